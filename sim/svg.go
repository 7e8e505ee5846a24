package sim

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// palette colours the series, one per policy or strategy, in order: the
// colour-blind-safe palette of Okabe and Ito (2008), yellow last as it is
// the faintest on white.
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"}

// dashes gives each series a line style of its own as well, so that lines
// that coincide (two policies doing the same thing) still show each other
// and the plot reads without colour.
var dashes = []string{"none", "9 3", "2 2", "10 3 2 3", "5 5", "14 3 3 3 3 3", "1 4", "6 2 1 2 1 2"}

// offeredDash is the style of the offered-load reference line, unlike any
// series'.
const offeredDash, offeredColour = "3 7", "#555555"

// seriesStyle returns the colour, dash and width of series i: no two of the
// first len(palette)*len(dashes) share colour and dash, and earlier series
// are drawn wider, so that a later line on top of an identical one leaves
// it visible at its edges.
func seriesStyle(i int, name string) (colour, dash string, width float64) {
	if name == "offered" {
		return offeredColour, offeredDash, 1.4
	}
	n := len(palette)
	return palette[i%n], dashes[(i+i/n)%len(dashes)], max(1.2, 2.8-0.2*float64(i%n))
}

// panel is one chart: lines over a shared x axis.
type panel struct {
	title      string
	xLabel     string
	names      []string
	xs, ys     [][]float64
	shadeFrom  float64 // an x range to shade (the incident); none if equal
	shadeTo    float64
	markers    bool
	xMin, xMax float64
	yMax       float64
	logY       bool // a log10 y axis, for series spanning decades
}

const (
	svgWidth    = 960
	panelHeight = 260
	marginLeft  = 70
	marginRight = 20
	marginTop   = 44
	panelGap    = 70
)

// WriteSVG writes a plot of the report: for each case, the attempts reaching
// the upstream and the goodput per second, one line per policy, with the
// incident shaded; for the backoff experiment, calls and completion time
// against the number of clients, one line per strategy.
func (r *Report) WriteSVG(w io.Writer) error {
	var panels []panel
	title := fmt.Sprintf("sluice sim: %s (seed %d)", r.Scenario, r.Seed)
	if r.Backoff != nil {
		panels = r.backoffPanels()
	} else {
		panels = r.incidentPanels()
	}
	height := marginTop + len(panels)*(panelHeight+panelGap)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", marginLeft, html.EscapeString(title))
	for i, p := range panels {
		b.WriteString(`<g class="panel">` + "\n")
		p.draw(&b, marginTop+i*(panelHeight+panelGap)+20)
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) incidentPanels() []panel {
	var out []panel
	for _, inc := range r.Incidents {
		up := panel{xLabel: "time (s)", shadeFrom: inc.StartS, shadeTo: inc.EndS, xMax: inc.DurationS}
		good := up
		what := "upstream"
		if r.Scenario == ScenarioLayers {
			what = "bottom service"
		}
		prefix := ""
		if inc.Case != "" {
			prefix = inc.Case + ": "
		}
		up.title = prefix + "attempts reaching the " + what + " per second"
		good.title = prefix + "goodput: successful calls per second (grey dots: offered)"
		for _, res := range r.Results {
			if res.Case != inc.Case {
				continue
			}
			xs := make([]float64, len(res.Series.Upstream))
			for i := range xs {
				xs[i] = (float64(i) + 0.5) * res.Series.StepS
			}
			up.names = append(up.names, res.Name)
			up.xs = append(up.xs, xs)
			up.ys = append(up.ys, floats(res.Series.Upstream))
			good.names = append(good.names, res.Name)
			good.xs = append(good.xs, xs)
			good.ys = append(good.ys, floats(res.Series.Goodput))
		}
		// The offered load is the same for every policy: draw it once.
		for _, res := range r.Results {
			if res.Case == inc.Case {
				good.names = append(good.names, "offered")
				good.xs = append(good.xs, good.xs[0])
				good.ys = append(good.ys, floats(res.Series.Offered))
				break
			}
		}
		out = append(out, up, good)
	}
	return out
}

func (r *Report) backoffPanels() []panel {
	calls := panel{title: "write calls (mean per trial, log scale)", xLabel: "clients", markers: true, logY: true}
	done := panel{title: "completion time, ms (mean per trial, log scale)", xLabel: "clients", markers: true, logY: true}
	for _, s := range r.Backoff {
		var xs, cs, ts []float64
		for _, p := range s.Points {
			xs = append(xs, float64(p.Clients))
			cs = append(cs, p.Calls)
			ts = append(ts, p.CompletionMs)
		}
		calls.names = append(calls.names, s.Name)
		calls.xs = append(calls.xs, xs)
		calls.ys = append(calls.ys, cs)
		done.names = append(done.names, s.Name)
		done.xs = append(done.xs, xs)
		done.ys = append(done.ys, ts)
	}
	for _, p := range []*panel{&calls, &done} {
		p.xMin = math.Inf(1)
		for _, xs := range p.xs {
			for _, x := range xs {
				p.xMin = min(p.xMin, x)
				p.xMax = max(p.xMax, x)
			}
		}
		if p.xMin == p.xMax { // one client count
			p.xMin, p.xMax = p.xMin-5, p.xMax+5
		}
	}
	return []panel{calls, done}
}

func floats(v []int64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func (p *panel) draw(b *strings.Builder, top int) {
	left, right := float64(marginLeft), float64(svgWidth-marginRight)
	y0, y1 := float64(top+panelHeight), float64(top+44)
	ymax := p.yMax
	for _, ys := range p.ys {
		for _, y := range ys {
			ymax = max(ymax, y)
		}
	}
	var ymin float64
	var yTicks []float64
	if p.logY {
		ymin = math.Inf(1)
		for _, ys := range p.ys {
			for _, y := range ys {
				if y > 0 {
					ymin = min(ymin, y)
				}
			}
		}
		if math.IsInf(ymin, 1) {
			ymin = 1
		}
		ymin = math.Pow(10, math.Floor(math.Log10(ymin)))
		ymax = math.Pow(10, math.Ceil(math.Log10(max(ymax, ymin*10))))
		for y := ymin; y <= ymax*1.001; y *= 10 {
			yTicks = append(yTicks, y)
		}
	} else {
		yStep := niceStep(ymax / 5)
		ymax = math.Max(yStep, math.Ceil(ymax/yStep)*yStep)
		for y := 0.0; y <= ymax+yStep/2; y += yStep {
			yTicks = append(yTicks, y)
		}
	}
	xmin, xmax := p.xMin, p.xMax
	if xmax <= xmin {
		xmax = xmin + 1
	}
	sx := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*(right-left) }
	sy := func(y float64) float64 { return y0 - y/ymax*(y0-y1) }
	if p.logY {
		lo, hi := math.Log10(ymin), math.Log10(ymax)
		sy = func(y float64) float64 { return y0 - (math.Log10(max(y, ymin))-lo)/(hi-lo)*(y0-y1) }
	}

	fmt.Fprintf(b, `<text x="%s" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", num(left), top+12, html.EscapeString(p.title))
	if p.shadeTo > p.shadeFrom {
		fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" fill="#f4cccc" opacity="0.6"/>`+"\n",
			num(sx(p.shadeFrom)), num(y1), num(sx(p.shadeTo)-sx(p.shadeFrom)), num(y0-y1))
	}
	// Grid and axes.
	for _, y := range yTicks {
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#dddddd"/>`+"\n", num(left), num(sy(y)), num(right), num(sy(y)))
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="end">%s</text>`+"\n", num(left-6), num(sy(y)+4), label(y))
	}
	xStep := niceStep((xmax - xmin) / 8)
	for x := math.Ceil(xmin/xStep) * xStep; x <= xmax+xStep/1e6; x += xStep {
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#999999"/>`+"\n", num(sx(x)), num(y0), num(sx(x)), num(y0+4))
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num(sx(x)), num(y0+17), label(x))
	}
	fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333"/>`+"\n", num(left), num(y0), num(right), num(y0))
	fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333"/>`+"\n", num(left), num(y0), num(left), num(y1))
	fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num((left+right)/2), num(y0+34), html.EscapeString(p.xLabel))

	// Lines.
	for i, ys := range p.ys {
		colour, dash, width := seriesStyle(i, p.names[i])
		var pts strings.Builder
		for j, y := range ys {
			if j > 0 {
				pts.WriteByte(' ')
			}
			pts.WriteString(num(sx(p.xs[i][j])))
			pts.WriteByte(',')
			pts.WriteString(num(sy(y)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="%s" stroke-dasharray="%s" points="%s"><title>%s</title></polyline>`+"\n",
			colour, num(width), dash, pts.String(), html.EscapeString(p.names[i]))
		if p.markers {
			for j, y := range ys {
				fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", num(sx(p.xs[i][j])), num(sy(y)), colour)
			}
		}
	}
	// Legend, under the title: a stretch of each line, in its style.
	x := left
	for i, name := range p.names {
		colour, dash, width := seriesStyle(i, name)
		fmt.Fprintf(b, `<line class="legend" x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="%s" stroke-dasharray="%s"><title>%s</title></line>`+"\n",
			num(x), top+26, num(x+26), top+26, colour, num(width), dash, html.EscapeString(name))
		fmt.Fprintf(b, `<text x="%s" y="%d">%s</text>`+"\n", num(x+30), top+30, html.EscapeString(name))
		x += 42 + 7*float64(len(name))
	}
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func label(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatInt(int64(x), 10)
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}
