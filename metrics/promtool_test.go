package metrics_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-go/sluice/internal/testenv"
)

const (
	rulesFile     = "../deploy/prometheus/alerts.yml"
	ruleTestsFile = "../deploy/prometheus/alerts_test.yml"
)

// promtool returns the path of promtool, skipping the test where it is
// missing (failing it under SLUICE_REQUIRE_ALL=1).
func promtool(t *testing.T) string {
	t.Helper()
	return testenv.RequireTool(t, "promtool", "install prometheus (the Debian package ships promtool): apt-get install -y prometheus")
}

// runRuleTests runs `promtool test rules` on the test file in dir and
// returns its output and whether it passed.
func runRuleTests(t *testing.T, tool, dir string) (string, bool) {
	t.Helper()
	cmd := exec.Command(tool, "test", "rules", filepath.Base(ruleTestsFile))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("running promtool: %v", err)
	}
	return string(out), err == nil
}

// TestAlertRulesUnitTests runs the shipped rules' unit tests: each alert
// fires on synthetic series of an unhealthy target, with the labels and
// annotations an operator will see, and stays quiet on healthy series.
func TestAlertRulesUnitTests(t *testing.T) {
	tool := promtool(t)
	if out, ok := runRuleTests(t, tool, filepath.Dir(ruleTestsFile)); !ok {
		t.Fatalf("promtool test rules %s failed:\n%s", ruleTestsFile, out)
	}
}

// TestAlertRuleTestsDetectASilentAlert shows the unit tests can fail: with
// any one alert's expression replaced by one that never fires, promtool
// reports that alert's firing case.
func TestAlertRuleTestsDetectASilentAlert(t *testing.T) {
	tool := promtool(t)
	rules := readYAML[ruleFile](t, rulesFile)
	tests, err := os.ReadFile(ruleTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	for gi, g := range rules.Groups {
		for ri, r := range g.Rules {
			dir := t.TempDir()
			broken := readYAML[ruleFile](t, rulesFile)
			broken.Groups[gi].Rules[ri].Expr = "sluice_health_score > 2"
			writeYAML(t, filepath.Join(dir, filepath.Base(rulesFile)), broken)
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(ruleTestsFile)), tests, 0o600); err != nil {
				t.Fatal(err)
			}
			out, ok := runRuleTests(t, tool, dir)
			if ok || !strings.Contains(out, "alertname: "+r.Alert+",") {
				t.Errorf("%s never firing: promtool passed=%v and did not name it:\n%s", r.Alert, ok, out)
			}
		}
	}
}

// TestEveryAlertHasRuleTests checks that the unit tests cover every alert in
// alerts.yml with a case in which it fires and one in which it stays quiet,
// and name no alert the rules do not have.
func TestEveryAlertHasRuleTests(t *testing.T) {
	rules := readYAML[ruleFile](t, rulesFile)
	tests := readYAML[ruleTests](t, ruleTestsFile)
	if !slices.Contains(tests.RuleFiles, filepath.Base(rulesFile)) {
		t.Errorf("%s does not load %s: rule_files %v", ruleTestsFile, filepath.Base(rulesFile), tests.RuleFiles)
	}
	for _, p := range coverageProblems(rules, tests) {
		t.Error(p)
	}
}

// TestCoverageProblems checks the coverage check itself.
func TestCoverageProblems(t *testing.T) {
	rules := ruleFile{Groups: []ruleGroup{{Rules: []rule{{Alert: "A"}, {Alert: "B"}, {Alert: "C"}}}}}
	fires := alertTest{Alertname: "A", ExpAlerts: []any{map[string]any{}}}
	quiet := func(name string) alertTest { return alertTest{Alertname: name} }
	tests := ruleTests{Tests: []ruleTestGroup{
		{AlertRuleTest: []alertTest{fires, quiet("A"), quiet("B")}},
		{AlertRuleTest: []alertTest{{Alertname: "Z", ExpAlerts: []any{1}}}},
	}}
	got := strings.Join(coverageProblems(rules, tests), "\n")
	for _, want := range []string{
		"alert B has no test case in which it fires",
		"alert C has no test case in which it fires",
		"alert C has no test case in which it stays quiet",
		"tests name alert Z, which alerts.yml does not have",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "alert A") || strings.Contains(got, "B has no test case in which it stays quiet") {
		t.Errorf("problems name a covered case:\n%s", got)
	}
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type ruleGroup struct {
	Name  string `yaml:"name"`
	Rules []rule `yaml:"rules"`
}

type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type alertTest struct {
	EvalTime  string `yaml:"eval_time"`
	Alertname string `yaml:"alertname"`
	ExpAlerts []any  `yaml:"exp_alerts"`
}

type ruleTestGroup struct {
	Interval      string           `yaml:"interval"`
	InputSeries   []map[string]any `yaml:"input_series"`
	AlertRuleTest []alertTest      `yaml:"alert_rule_test"`
}

type ruleTests struct {
	RuleFiles          []string        `yaml:"rule_files"`
	EvaluationInterval string          `yaml:"evaluation_interval"`
	Tests              []ruleTestGroup `yaml:"tests"`
}

// coverageProblems lists the alerts of rules without a test case that
// expects them to fire, or one that expects none of them, and test cases
// naming an alert rules lacks.
func coverageProblems(rules ruleFile, tests ruleTests) []string {
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, g := range tests.Tests {
		for _, c := range g.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				fires[c.Alertname] = true
			} else {
				quiet[c.Alertname] = true
			}
		}
	}
	var problems []string
	known := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			known[r.Alert] = true
			if !fires[r.Alert] {
				problems = append(problems, "alert "+r.Alert+" has no test case in which it fires")
			}
			if !quiet[r.Alert] {
				problems = append(problems, "alert "+r.Alert+" has no test case in which it stays quiet")
			}
		}
	}
	for _, m := range []map[string]bool{fires, quiet} {
		for name := range m {
			if !known[name] {
				problems = append(problems, "tests name alert "+name+", which alerts.yml does not have")
			}
		}
	}
	slices.Sort(problems)
	return slices.Compact(problems)
}

// readYAML decodes path strictly into a T.
func readYAML[T any](t *testing.T, path string) T {
	t.Helper()
	var v T
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
