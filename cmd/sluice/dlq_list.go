package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/dlq/dlqhttp"
)

// dlqListOptions are the inputs of `sluice dlq list`.
type dlqListOptions struct {
	admin  adminFlags
	queue  string
	state  string
	limit  int
	asJSON bool
}

func newDLQListCommand(o *dlqListOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead-lettered requests, oldest first",
		Example: `  sluice dlq list
  sluice dlq list --queue agents --state parked`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.admin.client()
			if err != nil {
				return err
			}
			defer c.close()
			msgs, err := listMessages(cmd.Context(), c, o.queue, o.state, o.limit)
			if err != nil {
				return err
			}
			if o.asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if msgs == nil {
					msgs = []dlqhttp.MessageView{}
				}
				return enc.Encode(msgs)
			}
			writeMessageTable(cmd.OutOrStdout(), msgs, time.Now())
			return nil
		},
	}
	o.admin.register(cmd.Flags())
	cmd.Flags().StringVar(&o.queue, "queue", "", "only the messages of this `QUEUE` (a route's name)")
	cmd.Flags().StringVar(&o.state, "state", "", stateFlagUsage)
	cmd.Flags().IntVar(&o.limit, "limit", 100, "show at most `N` messages; 0 for all")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the messages as a JSON array")
	_ = cmd.RegisterFlagCompletionFunc("state", completeStates)
	return cmd
}

// writeMessageTable prints one line per message.
func writeMessageTable(w io.Writer, msgs []dlqhttp.MessageView, now time.Time) {
	if len(msgs) == 0 {
		fmt.Fprintln(w, "no messages")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tQUEUE\tSTATE\tREQUEST\tREPLAYS\tAGE\tNEXT REPLAY\tLAST ERROR")
	for _, m := range msgs {
		next := "-"
		if m.State == "ready" && !m.NextReplay.IsZero() {
			if d := m.NextReplay.Sub(now); d > 0 {
				next = "in " + roundDuration(d)
			} else {
				next = "due"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%d\t%s\t%s\t%s\n", m.ID, m.Queue, m.State, m.Method, m.URI,
			m.Replays, roundDuration(now.Sub(m.Enqueued)), next, truncate(m.LastError, 60))
	}
	tw.Flush()
}

// roundDuration shows d at a precision a person reads at a glance.
func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d > 0 && d < time.Millisecond:
		return "<1ms" // not "0s": something was measured
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// truncate shortens s to at most n runes, on one line.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
