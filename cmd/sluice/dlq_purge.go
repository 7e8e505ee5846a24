package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// dlqPurgeOptions are the inputs of `sluice dlq purge`.
type dlqPurgeOptions struct {
	admin     adminFlags
	queue     string
	state     string
	olderThan time.Duration
	all       bool
	dryRun    bool
}

func newDLQPurgeCommand(o *dlqPurgeOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "purge [ID...] [--queue QUEUE] [--older-than DURATION] [--all]",
		Short: "Delete dead-lettered requests for good",
		Long: `Purge deletes messages from the dead-letter queue without replaying them:
the IDs given, or every message matching --queue, --state and --older-than
(its age counted from when it was queued). Purging every message of every
queue needs --all, so that a bare 'purge' deletes nothing. --dry-run lists
what would be deleted.`,
		Example: `  sluice dlq purge 01J9Z3K4Q8W2M6T5R7Y1X0V3BN
  sluice dlq purge --queue agents --state parked --older-than 24h
  sluice dlq purge --all --dry-run`,
		RunE: func(cmd *cobra.Command, a []string) error {
			filtered := o.queue != "" || o.state != "" || o.olderThan > 0 || o.all
			switch {
			case len(a) > 0 && filtered:
				return usageError{errors.New("give message IDs or a selection (--queue, --state, --older-than, --all), not both")}
			case len(a) == 0 && !filtered:
				return usageError{errors.New("purge needs message IDs, a selection (--queue, --state, --older-than), or --all")}
			case o.olderThan < 0:
				return usageError{fmt.Errorf("--older-than must be positive, got %v", o.olderThan)}
			}
			c, err := o.admin.client()
			if err != nil {
				return err
			}
			defer c.close()
			ids := a
			if len(ids) == 0 {
				msgs, err := listMessages(cmd.Context(), c, o.queue, o.state, 0)
				if err != nil {
					return err
				}
				cutoff := time.Now().Add(-o.olderThan)
				for _, m := range msgs {
					if o.olderThan == 0 || m.Enqueued.Before(cutoff) {
						ids = append(ids, m.ID)
					}
				}
			}
			return o.purge(cmd, c, ids)
		},
	}
	o.admin.register(cmd.Flags())
	cmd.Flags().StringVar(&o.queue, "queue", "", "only messages of this `QUEUE` (a route's name)")
	cmd.Flags().StringVar(&o.state, "state", "", stateFlagUsage)
	cmd.Flags().DurationVar(&o.olderThan, "older-than", 0, "only messages queued longer ago than `DURATION` (such as 30m or 72h)")
	cmd.Flags().BoolVar(&o.all, "all", false, "select every message of every queue")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "list the messages that would be deleted, delete nothing")
	_ = cmd.RegisterFlagCompletionFunc("state", completeStates)
	return cmd
}

// purge deletes ids one by one (the admin API deletes by ID), reporting
// each failure and going on with the rest.
func (o *dlqPurgeOptions) purge(cmd *cobra.Command, c *adminClient, ids []string) error {
	out := cmd.OutOrStdout()
	if o.dryRun {
		for _, id := range ids {
			fmt.Fprintln(out, id)
		}
		fmt.Fprintf(out, "would purge %d message(s)\n", len(ids))
		return nil
	}
	deleted, gone := 0, 0
	var errs []error
	for _, id := range ids {
		r, err := c.do(cmd.Context(), http.MethodDelete, "/dlq/"+url.PathEscape(id), nil)
		switch {
		case err != nil:
			return err // the server is unreachable: no point going on
		case r.code == http.StatusNoContent || r.code == http.StatusOK:
			deleted++
		case r.code == http.StatusNotFound:
			gone++ // replayed or purged meanwhile
		default:
			errs = append(errs, fmt.Errorf("%s: %w", id, c.apiError(r)))
		}
	}
	fmt.Fprintf(out, "purged %d message(s)", deleted)
	if gone > 0 {
		fmt.Fprintf(out, "; %d were gone already", gone)
	}
	fmt.Fprintln(out)
	return errors.Join(errs...)
}
