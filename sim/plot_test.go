package sim

import (
	"bytes"
	"encoding/xml"
	"io"
	"slices"
	"strings"
	"testing"
)

// okabeIto is the colour-blind-safe palette of Okabe and Ito (2008).
var okabeIto = []string{"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"}

// stroke is how one line of a plot is drawn.
type stroke struct{ colour, dash string }

// plotStrokes returns, per panel (in order), the strokes of its lines and
// of its legend entries, keyed by the series' name.
func plotStrokes(t *testing.T, svg []byte) (lines, legends []map[string]stroke) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var cur *xml.StartElement
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return lines, legends
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range tok.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch {
			case tok.Name.Local == "g" && attr["class"] == "panel":
				lines, legends = append(lines, map[string]stroke{}), append(legends, map[string]stroke{})
			case tok.Name.Local == "polyline" || tok.Name.Local == "line" && attr["class"] == "legend":
				e := tok.Copy()
				cur = &e
			}
		case xml.CharData:
			if cur == nil || len(lines) == 0 {
				continue
			}
			attr := map[string]string{}
			for _, a := range cur.Attr {
				attr[a.Name.Local] = a.Value
			}
			s := stroke{attr["stroke"], attr["stroke-dasharray"]}
			name := strings.TrimSpace(string(tok))
			if cur.Name.Local == "polyline" {
				lines[len(lines)-1][name] = s
			} else {
				legends[len(legends)-1][name] = s
			}
			cur = nil
		}
	}
}

// Identical series must not hide each other: in each panel every line has
// its own colour from a colour-blind-safe palette and its own dash pattern,
// and the legend shows each line's colour and dash.
func TestPlotLinesHaveDistinctColoursAndDashes(t *testing.T) {
	t.Parallel()
	same := Series{StepS: 1, Offered: []int64{5, 5, 5, 5}, Upstream: []int64{4, 9, 9, 4}, Goodput: []int64{4, 0, 0, 4}}
	inc := &Report{Scenario: ScenarioOutage, Seed: 1, Incidents: []Incident{{Kind: "outage", StartS: 1, EndS: 3, DurationS: 4}}}
	bo := &Report{Scenario: ScenarioBackoff, Seed: 1}
	for i := range 8 {
		name := "policy-" + string(rune('a'+i))
		inc.Results = append(inc.Results, Result{Name: name, Series: same})
		bo.Backoff = append(bo.Backoff, BackoffResult{Name: name, Points: []BackoffPoint{{Clients: 10, Calls: 100, CompletionMs: 50}, {Clients: 20, Calls: 300, CompletionMs: 90}}})
	}
	for _, rep := range []*Report{inc, bo} {
		var buf bytes.Buffer
		if err := rep.WriteSVG(&buf); err != nil {
			t.Fatal(err)
		}
		lines, legends := plotStrokes(t, buf.Bytes())
		if len(lines) != 2 {
			t.Fatalf("%s: %d panels, want 2", rep.Scenario, len(lines))
		}
		for p := range lines {
			colours, dashes := map[string]string{}, map[string]string{}
			for name, s := range lines[p] {
				if name == "offered" {
					continue
				}
				if !slices.Contains(okabeIto, s.colour) {
					t.Errorf("%s panel %d: %s is drawn in %q, not an Okabe–Ito colour", rep.Scenario, p, name, s.colour)
				}
				if s.dash == "" {
					t.Errorf("%s panel %d: %s has no stroke-dasharray", rep.Scenario, p, name)
				}
				if other, dup := colours[s.colour]; dup {
					t.Errorf("%s panel %d: %s and %s share colour %s", rep.Scenario, p, name, other, s.colour)
				}
				if other, dup := dashes[s.dash]; dup {
					t.Errorf("%s panel %d: %s and %s share dash %q", rep.Scenario, p, name, other, s.dash)
				}
				colours[s.colour], dashes[s.dash] = name, name
				if legends[p][name] != s {
					t.Errorf("%s panel %d: legend of %s is %+v, its line %+v", rep.Scenario, p, name, legends[p][name], s)
				}
			}
			if len(colours) != 8 {
				t.Errorf("%s panel %d: %d policy lines, want 8", rep.Scenario, p, len(colours))
			}
			if off, ok := lines[p]["offered"]; ok && (dashes[off.dash] != "" || off.dash == "") {
				t.Errorf("%s panel %d: the offered line's dash %q is not its own", rep.Scenario, p, off.dash)
			}
		}
	}
}
