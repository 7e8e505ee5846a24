package health

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/sluice-go/sluice"
)

// AlertSharedDegraded is the type of the alert raised while a shared
// component (Config.Shared) works in its local fallback mode.
const AlertSharedDegraded = "shared_degraded"

// SharedReport is the state of one shared component (Config.Shared).
type SharedReport struct {
	// Name is the component's key in Config.Shared.
	Name string `json:"name"`
	// Degraded is true while the component works in its local fallback
	// mode instead of from the shared state.
	Degraded bool `json:"degraded"`
	// LastError is the text of its last failure to reach the shared
	// state, empty if there was none.
	LastError string `json:"last_error,omitempty"`
	// Fleet and Local are, for a component that is a SharedStater (a
	// shared breaker), what the shared store holds and what this instance
	// holds, side by side; empty for the others.
	Fleet string `json:"fleet,omitempty"`
	Local string `json:"local,omitempty"`
}

// SharedStater is a shared component that can say, for the report, what
// the shared store holds (a breaker's fleet record: "open", "closed",
// "none") and what this instance holds (its own breaker's state), which
// differ while a change is on its way or the store is away.
type SharedStater interface {
	SharedState() (fleet, local string)
}

// sharedNow is Config.Shared with what Config.SharedFunc adds now.
func (m *Monitor) sharedNow() map[string]sluice.SharedComponent {
	if m.sharedFn == nil {
		return m.shared
	}
	out := maps.Clone(m.sharedFn())
	if out == nil {
		out = map[string]sluice.SharedComponent{}
	}
	maps.Copy(out, m.shared)
	maps.DeleteFunc(out, func(_ string, c sluice.SharedComponent) bool { return c == nil })
	return out
}

// sharedReports reads the components, sorted by name.
func sharedReports(cs map[string]sluice.SharedComponent) []SharedReport {
	out := make([]SharedReport, 0, len(cs))
	for _, name := range slices.Sorted(maps.Keys(cs)) {
		c := cs[name]
		r := SharedReport{Name: name, Degraded: c.Degraded()}
		if err := c.LastError(); err != nil {
			r.LastError = err.Error()
		}
		if st, ok := c.(SharedStater); ok {
			r.Fleet, r.Local = st.SharedState()
		}
		out = append(out, r)
	}
	return out
}

// sharedAlerts raises a warning for each degraded component. Value is 1
// and Threshold 0: a component is degraded or not.
func sharedAlerts(rs []SharedReport) []Alert {
	var out []Alert
	for _, r := range rs {
		if !r.Degraded {
			continue
		}
		msg := fmt.Sprintf("Shared component '%s' is degraded: it works from local state", r.Name)
		if r.LastError != "" {
			msg += " (" + r.LastError + ")"
		}
		out = append(out, Alert{Type: AlertSharedDegraded, Severity: SeverityWarning, Subject: r.Name, Message: msg, Value: 1})
	}
	return out
}

// validateShared rejects a nil component, naming it.
func validateShared(cs map[string]sluice.SharedComponent) error {
	for _, name := range slices.Sorted(maps.Keys(cs)) {
		if cs[name] == nil {
			return fmt.Errorf("health: Config.Shared[%q] must not be nil", name)
		}
	}
	return nil
}

// writeShared adds the shared components' section to the text report, if
// there are any.
func (r Report) writeShared(b *bytes.Buffer) {
	if len(r.Shared) == 0 {
		return
	}
	b.WriteString("\nShared State:\n")
	for _, x := range r.Shared {
		state := "SHARED"
		if x.Degraded {
			state = "DEGRADED (local)"
		}
		fmt.Fprintf(b, "  %s: %s", x.Name, state)
		if x.Fleet != "" || x.Local != "" {
			fmt.Fprintf(b, ", fleet %s, local %s", x.Fleet, x.Local)
		}
		if x.LastError != "" {
			fmt.Fprintf(b, ", last error: %s", x.LastError)
		}
		b.WriteString("\n")
	}
	r.writeAlerts(b, "  ", AlertSharedDegraded)
}
