package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSimOutageJSON(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "outage.svg")
	code, out, errOut := runCmd(t, "sim", "--scenario", "outage", "--policies", "naive,sluice-default", "--json", "--plot", plot)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rep struct {
		Scenario string `json:"scenario"`
		Seed     uint64 `json:"seed"`
		Policies []struct {
			Name                  string  `json:"name"`
			Offered               int64   `json:"offered"`
			UpstreamCalls         int64   `json:"upstream_calls"`
			Amplification         float64 `json:"amplification"`
			AmplificationIncident float64 `json:"amplification_incident"`
		} `json:"policies"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("the output is not JSON: %v\n%s", err, out)
	}
	if rep.Scenario != "outage" || rep.Seed != 1 || len(rep.Policies) != 2 {
		t.Fatalf("scenario %q, seed %d, %d policies; want outage, 1 and 2", rep.Scenario, rep.Seed, len(rep.Policies))
	}
	for _, p := range rep.Policies {
		if p.Offered <= 0 || p.UpstreamCalls <= 0 {
			t.Errorf("%s: offered %d, upstream calls %d", p.Name, p.Offered, p.UpstreamCalls)
		}
	}
	if naive, def := rep.Policies[0], rep.Policies[1]; naive.Name != "naive" || def.Name != "sluice-default" ||
		!(naive.AmplificationIncident > def.AmplificationIncident) {
		t.Errorf("naive amplifies %.2f during the outage, sluice-default %.2f; want naive above", naive.AmplificationIncident, def.AmplificationIncident)
	}
	if !strings.Contains(errOut, "sim outage:") || !strings.Contains(errOut, "plot written to "+plot) {
		t.Errorf("stderr lacks the progress and the plot's name: %q", errOut)
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !strings.HasPrefix(string(svg), "<svg") {
		t.Errorf("the plot is not an SVG: %v %.40q", err, svg)
	}
}

func TestSimTable(t *testing.T) {
	code, out, errOut := runCmd(t, "sim", "--scenario", "outage", "--policies", "none", "-q")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "scenario outage, seed 1:") {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
}

// A flag given a value that would silently mean its default (0 clients,
// 0 trials, an empty --policies or --plot) is refused as a usage error.
func TestSimRefusesZeroMeaningDefault(t *testing.T) {
	for _, tc := range []struct {
		rule string
		args []string
		want string
	}{
		{"zero clients", []string{"--clients", "0"}, "--clients must be at least 1, got 0"},
		{"negative clients", []string{"--clients", "-3"}, "--clients must be at least 1, got -3"},
		{"zero trials", []string{"--scenario", "backoff", "--trials", "0"}, "--trials must be at least 1, got 0"},
		{"no policy named", []string{"--policies", ""}, "--policies names no policy"},
		{"an empty plot path", []string{"--plot", ""}, "--plot needs a file name"},
		{"an old policy name is still accepted but the rest is checked", []string{"--policies", "original-network", "--clients", "0"}, "--clients must be at least 1"},
	} {
		args := append([]string{"sim", "-q"}, tc.args...)
		if !slices.Contains(args, "--scenario") {
			args = append(args, "--scenario", "outage")
		}
		code, out, errOut := runCmd(t, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: sluice %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.rule, strings.Join(args, " "), code, out, errOut, tc.want)
		}
	}
}

// --plot to a file that cannot be created fails before the simulation runs:
// no progress, no report, and no file left behind when the run fails later.
func TestSimPlotPathCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "no", "such", "dir", "out.svg")
	code, out, errOut := runCmd(t, "sim", "--scenario", "outage", "--policies", "none", "--plot", bad)
	if code != 1 || out != "" || strings.Contains(errOut, "sim outage:") || !strings.Contains(errOut, "--plot: open "+bad+": no such file or directory") {
		t.Errorf("--plot into a missing directory: exit %d, stdout %q, stderr %q; want exit 1 before any progress or report", code, out, errOut)
	}
	plot := filepath.Join(dir, "out.svg")
	code, _, errOut = runCmd(t, "sim", "--scenario", "outage", "--policy", filepath.Join(dir, "missing.yaml"), "--plot", plot)
	if _, err := os.Stat(plot); code != 1 || !os.IsNotExist(err) {
		t.Errorf("a run that failed after --plot was opened: exit %d (%q), plot file: %v; want exit 1 and no file", code, errOut, err)
	}
}

// The recovery scenario prints its own table by default: the three
// policies it compares, with the time back to 95 % of offered load.
func TestSimRecoveryTable(t *testing.T) {
	code, out, errOut := runCmd(t, "sim", "--scenario", "recovery", "--clients", "1", "-q")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"back to 95 %", "goodput lost", "naive", "sluice-default ", "sluice-default-checks"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
