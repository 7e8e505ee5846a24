package main

import (
	"encoding/json"
	"os"
	"path/filepath"
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
