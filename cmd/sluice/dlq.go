package main

import (
	"context"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/dlq/dlqhttp"
)

// newDLQCommand is the `sluice dlq` group: clients of the admin API's
// dead-letter routes. Each subcommand has its own file.
func newDLQCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, inspect, replay and purge dead-lettered requests of a running sluice",
		Long: `The dlq commands talk to a running 'sluice serve' through its admin API
(--admin, default ` + defaultAdminURL + `). Requests land in the dead-letter
queue when a route with on_exhausted: queue could not deliver them; each
route's replayer sends them again once the route's breakers let calls through,
and parks a message after repeated failed replays for an operator to look at.

If the server has an admin.token, put it in $` + adminTokenEnv + `.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newDLQListCommand(&dlqListOptions{}),
		newDLQShowCommand(&dlqShowOptions{}),
		newDLQReplayCommand(&dlqReplayOptions{}),
		newDLQPurgeCommand(&dlqPurgeOptions{}),
	)
	return cmd
}

// listMessages pages through GET /dlq until it has limit messages (0: all).
func listMessages(ctx context.Context, c *adminClient, queue, state string, limit int) ([]dlqhttp.MessageView, error) {
	var out []dlqhttp.MessageView
	after := ""
	for {
		q := url.Values{}
		if queue != "" {
			q.Set("queue", queue)
		}
		if state != "" {
			q.Set("state", state)
		}
		if after != "" {
			q.Set("after", after)
		}
		page := 1000
		if limit > 0 {
			page = min(page, limit-len(out))
		}
		q.Set("limit", strconv.Itoa(page))
		var res dlqhttp.ListResponse
		if err := c.getJSON(ctx, "/dlq", q, &res); err != nil {
			return nil, err
		}
		out = append(out, res.Messages...)
		if res.Next == "" || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		after = res.Next
	}
}

// stateFlagUsage documents the --state flag of the dlq commands.
const stateFlagUsage = "only messages in this `STATE`: ready, parked or any"

// completeStates completes the --state flag.
func completeStates(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"ready", "parked", "any"}, cobra.ShellCompDirectiveNoFileComp
}
