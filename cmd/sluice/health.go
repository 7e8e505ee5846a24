package main

import (
	"net/http"

	"github.com/spf13/cobra"
)

// healthOptions are the inputs of `sluice health`.
type healthOptions struct {
	admin  adminFlags
	asJSON bool
}

func newHealthCommand(o *healthOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Print the health report of a running sluice",
		Long: `Health prints the report of a running 'sluice serve' (GET /health/report on
its admin API): the instance it comes from (instance_id, or host:pid), the
overall score and status, every breaker, bulkhead, limiter, retry policy
and dead-letter queue, the state shared with the fleet (ratelimit, dlq and
each shared breaker: shared or degraded, the last Redis error, and for a
breaker the fleet's record beside this instance's own state), and the
alerts that are firing.

With --json it prints the JSON document of GET /health instead and exits with
status 1 when the status is critical, so scripts and probes can act on it.`,
		Example: `  sluice health
  sluice health --json --admin http://10.0.0.5:9901`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.admin.client()
			if err != nil {
				return err
			}
			defer c.close()
			path := "/health/report"
			if o.asJSON {
				path = "/health"
			}
			r, err := c.do(cmd.Context(), http.MethodGet, path, nil)
			if err != nil {
				return err
			}
			// /health answers 503 when critical, with the report as its body.
			if r.code != http.StatusOK && !(o.asJSON && r.code == http.StatusServiceUnavailable) {
				return c.apiError(r)
			}
			if _, err := cmd.OutOrStdout().Write(r.body); err != nil {
				return err
			}
			if r.code == http.StatusServiceUnavailable {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	o.admin.register(cmd.Flags())
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the JSON document; exit 1 when critical")
	return cmd
}
