package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/dlq/dlqhttp"
)

// dlqReplayOptions are the inputs of `sluice dlq replay`.
type dlqReplayOptions struct {
	admin adminFlags
	all   bool
	queue string
	state string
	limit int
}

func newDLQReplayCommand(o *dlqReplayOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay [ID | --all | --queue QUEUE]",
		Short: "Replay dead-lettered requests now",
		Long: `Replay sends queued requests to their route's upstreams now, instead of
waiting for the replayer's schedule: one message by ID, every message of one
queue (--queue), or of every queue (--all). A message that is replayed is
deleted; one that fails again stays queued with its replay count raised, and
is parked once it has failed too often. --state parked replays parked
messages, which the replayer leaves alone.

Replay refuses while the route's breakers are open: the upstream is known to
be down, and the replayer will deliver the messages once it is back.

The exit status is 0 when every message asked for was replayed, or there was
none to replay, and 1 otherwise: a replay that was refused, failed again or
was handed back, or (when nothing was replayed) a message skipped because a
replay of it was already running.`,
		Example: `  sluice dlq replay 01J9Z3K4Q8W2M6T5R7Y1X0V3BN
  sluice dlq replay --queue agents
  sluice dlq replay --all --state parked`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			modes := 0
			for _, set := range []bool{len(a) == 1, o.all, o.queue != ""} {
				if set {
					modes++
				}
			}
			if modes != 1 {
				return usageError{errors.New("replay needs exactly one of: a message ID, --all, --queue QUEUE")}
			}
			if len(a) == 1 && (o.state != "" || o.limit != 0) {
				return usageError{errors.New("--state and --limit select messages of a queue; they do not apply to one ID")}
			}
			c, err := o.admin.client()
			if err != nil {
				return err
			}
			defer c.close()
			if len(a) == 1 {
				return o.one(cmd, c, a[0])
			}
			return o.many(cmd, c)
		},
	}
	o.admin.register(cmd.Flags())
	cmd.Flags().BoolVar(&o.all, "all", false, "replay the messages of every queue")
	cmd.Flags().StringVar(&o.queue, "queue", "", "replay the messages of this `QUEUE` (a route's name)")
	cmd.Flags().StringVar(&o.state, "state", "", "replay only messages in this `STATE`: ready, parked or any (default any)")
	cmd.Flags().IntVar(&o.limit, "limit", 0, "replay at most `N` messages per queue; 0 for no limit")
	_ = cmd.RegisterFlagCompletionFunc("state", completeStates)
	return cmd
}

// one replays a single message.
func (o *dlqReplayOptions) one(cmd *cobra.Command, c *adminClient, id string) error {
	r, err := c.do(cmd.Context(), http.MethodPost, "/dlq/"+url.PathEscape(id)+"/replay", nil)
	if err != nil {
		return err
	}
	var res dlqhttp.ReplayOneResponse
	_ = json.Unmarshal(r.body, &res)
	switch {
	case r.code == http.StatusOK:
		fmt.Fprintf(cmd.OutOrStdout(), "%s: replayed\n", id)
		return nil
	case r.code == http.StatusBadGateway && res.Outcome == "failed":
		return fmt.Errorf("%s: replay failed, the message stays queued: %s", id, res.Error)
	}
	return c.apiError(r)
}

// many replays the selected messages of one queue or of all.
func (o *dlqReplayOptions) many(cmd *cobra.Command, c *adminClient) error {
	q := url.Values{}
	if o.queue != "" {
		q.Set("queue", o.queue)
	}
	if o.state != "" {
		q.Set("state", o.state)
	}
	if o.limit > 0 {
		q.Set("limit", strconv.Itoa(o.limit))
	}
	r, err := c.do(cmd.Context(), http.MethodPost, "/dlq/replay", q)
	if err != nil {
		return err
	}
	if r.code != http.StatusOK {
		return c.apiError(r)
	}
	var res dlqhttp.ReplayResponse
	if err := json.Unmarshal(r.body, &res); err != nil {
		return fmt.Errorf("admin API: cannot decode the replay results: %w", err)
	}
	out := cmd.OutOrStdout()
	if len(res.Results) == 0 {
		fmt.Fprintln(out, "no route queues requests: nothing to replay")
		return nil
	}
	for _, v := range res.Results {
		fmt.Fprintf(out, "%s: replayed %d, failed %d, parked %d, handed back %d, skipped %d\n",
			v.Queue, v.Replayed, v.Failed, v.Parked, v.Released, v.Skipped)
		if v.Error != "" {
			fmt.Fprintf(out, "%s: stopped: %s\n", v.Queue, v.Error)
		}
	}
	return replayVerdict(res.Results)
}

// replayVerdict is nil when every message asked for was replayed (or there
// was none), and otherwise an error saying what was not: a queue whose
// replay stopped (refused while its upstreams are unhealthy), messages that
// failed again or were handed back, or — when nothing at all was replayed —
// messages skipped because a replay of them was already running.
func replayVerdict(results []dlqhttp.ReplayView) error {
	var problems []string
	replayed := 0
	for _, v := range results {
		replayed += v.Replayed
		switch {
		case v.Error != "":
			problems = append(problems, v.Queue+": stopped: "+v.Error)
		case v.Failed > 0 || v.Released > 0:
			problems = append(problems, fmt.Sprintf("%s: %d failed again, %d handed back; they stay queued", v.Queue, v.Failed, v.Released))
		}
	}
	if replayed == 0 && len(problems) == 0 {
		for _, v := range results {
			if v.Skipped > 0 {
				problems = append(problems, fmt.Sprintf("%s: %d skipped (already being replayed, or gone)", v.Queue, v.Skipped))
			}
		}
	}
	switch {
	case len(problems) == 0:
		return nil
	case replayed == 0:
		return fmt.Errorf("nothing was replayed: %s", strings.Join(problems, "; "))
	}
	return fmt.Errorf("%d replayed, but some were not replayed: %s", replayed, strings.Join(problems, "; "))
}
