package metrics_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-go/sluice/metrics"
)

// exported maps every series name the Collector can produce to its labels;
// a histogram contributes its _bucket (with le), _sum and _count series.
func exported() map[string][]string {
	out := map[string][]string{}
	for _, f := range metrics.Metrics() {
		if f.Type == "histogram" {
			out[f.Name+"_bucket"] = append(slices.Clone(f.Labels), "le")
			out[f.Name+"_sum"] = f.Labels
			out[f.Name+"_count"] = f.Labels
			continue
		}
		out[f.Name] = f.Labels
	}
	return out
}

var (
	reMetric   = regexp.MustCompile(`\bsluice_[a-zA-Z0-9_]+`)
	reSelector = regexp.MustCompile(`\b(sluice_[a-zA-Z0-9_]+)\s*\{([^}]*)\}`)
	reMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	reGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	reLabelRef = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	// Labels Prometheus adds to every scraped series.
	targetLabels = []string{"instance", "job"}
)

// checkExpr reports every metric name in expr that the Collector does not
// export, and every label in a selector or grouping clause that none of the
// expression's metrics carries. It returns the labels the result may have.
func checkExpr(t *testing.T, where, expr string) []string {
	t.Helper()
	labels, problems := exprProblems(expr)
	for _, p := range problems {
		t.Errorf("%s: %s", where, p)
	}
	return labels
}

func exprProblems(expr string) (labels, problems []string) {
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	names := exported()
	metricsIn := reMetric.FindAllString(expr, -1)
	if len(metricsIn) == 0 {
		errorf("%q uses no sluice metric", expr)
	}
	labels = slices.Clone(targetLabels)
	for _, m := range metricsIn {
		ls, ok := names[m]
		if !ok {
			errorf("%s is not exported by the collector", m)
			continue
		}
		labels = append(labels, ls...)
	}
	for _, sel := range reSelector.FindAllStringSubmatch(expr, -1) {
		own := append(slices.Clone(names[sel[1]]), targetLabels...)
		for _, mt := range reMatcher.FindAllStringSubmatch(sel[2], -1) {
			if !slices.Contains(own, mt[1]) {
				errorf("%s has no label %q", sel[1], mt[1])
			}
		}
	}
	for _, g := range reGrouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[2], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(labels, l) {
				errorf("%s (%s) names label %q that none of its metrics has", g[1], g[2], l)
			}
		}
	}
	return labels, problems
}

// TestExprChecker checks that the checker used on the deploy files catches
// what it is meant to.
func TestExprChecker(t *testing.T) {
	for _, c := range []struct {
		expr string
		want string // "" for no problem
	}{
		{`sum by (name) (rate(sluice_circuit_breaker_failures_total{name="x"}[5m]))`, ""},
		{`histogram_quantile(0.9, sum by (le) (rate(sluice_retry_duration_seconds_bucket[1m])))`, ""},
		{`sluice_circuit_breaker_open_seconds > 300`, "sluice_circuit_breaker_open_seconds is not exported"},
		{`sluice_bulkhead_active_calls{name="db"}`, `sluice_bulkhead_active_calls has no label "name"`},
		{`sum by (operation) (sluice_bulkhead_active_calls)`, `names label "operation"`},
		{`up == 0`, "uses no sluice metric"},
	} {
		_, problems := exprProblems(c.expr)
		got := strings.Join(problems, "; ")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: problems %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	if len(doc.Groups) == 0 {
		t.Fatal("alerts.yml: no groups")
	}
	seen := map[string]bool{}
	var exprs []string
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			where := "alerts.yml " + r.Alert
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("%s: empty or duplicate alert name", where)
			}
			seen[r.Alert] = true
			if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q", where, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", where)
			}
			if r.For != "" && !regexp.MustCompile(`^[0-9]+[smh]$`).MatchString(r.For) {
				t.Errorf("%s: for %q", where, r.For)
			}
			labels := checkExpr(t, where, r.Expr)
			for _, a := range r.Annotations {
				for _, ref := range reLabelRef.FindAllStringSubmatch(a, -1) {
					if !slices.Contains(labels, ref[1]) {
						t.Errorf("%s: annotation uses $labels.%s, which its series do not have", where, ref[1])
					}
				}
			}
			exprs = append(exprs, r.Expr)
		}
	}
	// The rules an operator expects, with the thresholds of the SysManage
	// resilience document.
	all := strings.Join(exprs, "\n")
	for _, want := range []string{
		"sluice_circuit_breaker_state_seconds > 300",
		"sluice_circuit_breaker_failure_ratio > 0.3",
		"sluice_health_score <= 0.6",
		"sluice_dlq_depth",
		"sluice_dlq_oldest_age_seconds",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("alerts.yml has no rule with %q", want)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/sluice.json")
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	}
	type panel struct {
		ID      int      `json:"id"`
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var dash struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("sluice.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Fatal("dashboard needs a title and a uid")
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	n := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("duplicate panel id %d", p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				n++
				checkExpr(t, "panel "+p.Title, tg.Expr)
				for _, m := range reMetric.FindAllString(tg.Expr, -1) {
					used[strings.TrimSuffix(m, "_bucket")] = true
				}
			}
		}
	}
	walk(dash.Panels)
	if n < 10 {
		t.Fatalf("only %d queries", n)
	}
	reLabelValues := regexp.MustCompile(`label_values\((sluice_[a-zA-Z0-9_]+),\s*([a-zA-Z_]+)\)`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := json.Marshal(v.Query)
		m := reLabelValues.FindStringSubmatch(string(q))
		if m == nil {
			t.Errorf("variable %s: query %s is not label_values(sluice_..., label)", v.Name, q)
			continue
		}
		ls, ok := exported()[m[1]]
		if !ok || !slices.Contains(append(ls, targetLabels...), m[2]) {
			t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[2])
		}
	}
	// The dashboard shows the families an operator looks for first.
	for _, want := range []string{"sluice_health_score", "sluice_circuit_breaker_state", "sluice_retry_attempts_total",
		"sluice_retry_duration_seconds", "sluice_bulkhead_utilization_ratio", "sluice_rate_limiter_rejected_total",
		"sluice_fallback_total", "sluice_dlq_depth", "sluice_dlq_oldest_age_seconds"} {
		if !used[want] {
			t.Errorf("dashboard does not show %s", want)
		}
	}
}
