package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/dlq/dlqhttp"
)

// dlqShowOptions are the inputs of `sluice dlq show`.
type dlqShowOptions struct {
	admin  adminFlags
	body   bool
	asJSON bool
}

func newDLQShowCommand(o *dlqShowOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead-lettered request and its replay history",
		Long: `Show prints one message: the queued request (credentials redacted), when it
was queued, how often it was sent before it was queued, how many replays
have failed since, and the last error. --body adds the
request body.`,
		Example: "  sluice dlq show 01J9Z3K4Q8W2M6T5R7Y1X0V3BN --body",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := o.admin.client()
			if err != nil {
				return err
			}
			defer c.close()
			q := url.Values{}
			if o.body {
				q.Set("body", "1")
			}
			r, err := c.do(cmd.Context(), http.MethodGet, "/dlq/"+url.PathEscape(a[0]), q)
			if err != nil {
				return err
			}
			if r.code != http.StatusOK {
				return c.apiError(r)
			}
			if o.asJSON {
				_, err := cmd.OutOrStdout().Write(r.body)
				return err
			}
			var m dlqhttp.MessageView
			if err := json.Unmarshal(r.body, &m); err != nil {
				return fmt.Errorf("admin API: cannot decode the message: %w", err)
			}
			writeMessage(cmd.OutOrStdout(), m)
			return nil
		},
	}
	o.admin.register(cmd.Flags())
	cmd.Flags().BoolVar(&o.body, "body", false, "include the request body")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the message as the admin API's JSON")
	return cmd
}

// writeMessage prints a message as "key: value" lines, headers sorted. It
// splits the stored counts for what they are: Attempts counts every attempt
// (those before queueing plus one per failed replay) and Replays the failed
// replays, so the sends before queueing are their difference.
func writeMessage(w io.Writer, m dlqhttp.MessageView) {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format(time.RFC3339)
	}
	line := func(key, format string, a ...any) {
		fmt.Fprintf(w, "%-22s"+format+"\n", append([]any{key + ":"}, a...)...)
	}
	line("id", "%s", m.ID)
	line("queue", "%s", m.Queue)
	line("state", "%s", m.State)
	line("request", "%s %s", m.Method, m.URI)
	if m.Host != "" {
		line("host", "%s", m.Host)
	}
	line("enqueued", "%s", ts(m.Enqueued))
	if before := m.Attempts - m.Replays; before >= 0 {
		line("sent before queueing", "%d", before)
	} else { // not a record this proxy writes: show the counts as stored
		line("attempts", "%d in all", m.Attempts)
	}
	if m.Replays > 0 {
		line("failed replays", "%d (%d attempts in all; the last failed at %s)", m.Replays, m.Attempts, ts(m.LastFailure))
	} else {
		line("failed replays", "0")
	}
	line("first failure", "%s", ts(m.FirstFailure))
	line("last failure", "%s", ts(m.LastFailure))
	if m.State == "ready" {
		line("next replay", "%s", ts(m.NextReplay))
	}
	if m.LastError != "" {
		line("last error", "%s", m.LastError)
	}
	if len(m.Headers) > 0 {
		fmt.Fprintln(w, "headers:")
		names := make([]string, 0, len(m.Headers))
		for k := range m.Headers {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			for _, v := range m.Headers[k] {
				fmt.Fprintf(w, "  %s: %s\n", k, v)
			}
		}
	}
	line("body", "%d bytes", m.BodyBytes)
	switch {
	case m.Body != nil:
		fmt.Fprintln(w, *m.Body)
	case m.BodyBase64 != nil:
		fmt.Fprintln(w, "(binary, base64)")
		fmt.Fprintln(w, strings.TrimSpace(*m.BodyBase64))
	}
}
