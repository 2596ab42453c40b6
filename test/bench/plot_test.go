package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// scalePoint is one step of BenchmarkSimulation: the resync after a restart and the
// operator's heap at a number of stacks.
type scalePoint struct {
	stacks  int
	resyncS float64
	heapMiB float64
}

// simulationBefore is BenchmarkSimulation as recorded at commit a2782d7 (1 Dec 2026,
// docs/benchmarks.md), before the render skip and the steady-state work of issue 25: the
// curve each new run is drawn against.
var simulationBefore = scalePoint{}.series([][3]float64{
	{1000, 9.0, 17.2}, {2000, 29.0, 35.5}, {5000, 76.5, 80.0}, {10000, 110.1, 150.7},
})

func (scalePoint) series(rows [][3]float64) []scalePoint {
	out := make([]scalePoint, len(rows))
	for i, r := range rows {
		out[i] = scalePoint{stacks: int(r[0]), resyncS: r[1], heapMiB: r[2]}
	}
	return out
}

// writeScalePlot draws two panels side by side, resync time and operator heap against
// stacks, each with the recorded curve and this run's. It writes SVG by hand: the chart
// is two polylines per panel, and a plotting module would add a dozen dependencies to
// the test build for that.
func writeScalePlot(path, caption string, before, after []scalePoint) error {
	const (
		panelW, panelH = 420, 300
		left, right    = 60, 20
		top, bottom    = 40, 50
	)
	maxStacks := 0
	for _, p := range append(append([]scalePoint{}, before...), after...) {
		maxStacks = max(maxStacks, p.stacks)
	}
	if maxStacks == 0 {
		return fmt.Errorf("no points to draw")
	}
	var b strings.Builder
	width := 2 * panelW
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, panelH+30)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, panelH+30)
	panels := []struct {
		title string
		value func(scalePoint) float64
		x0    int
	}{
		{"resync after a restart (s)", func(p scalePoint) float64 { return p.resyncS }, 0},
		{"operator heap (MiB)", func(p scalePoint) float64 { return p.heapMiB }, panelW},
	}
	for _, pn := range panels {
		maxY := 0.0
		for _, p := range append(append([]scalePoint{}, before...), after...) {
			maxY = math.Max(maxY, pn.value(p))
		}
		maxY = niceCeil(maxY)
		plotW, plotH := float64(panelW-left-right), float64(panelH-top-bottom)
		x := func(stacks int) float64 {
			return float64(pn.x0+left) + plotW*float64(stacks)/float64(maxStacks)
		}
		y := func(v float64) float64 { return float64(top) + plotH*(1-v/maxY) }
		fmt.Fprintf(&b, `<text x="%d" y="20" font-weight="bold">%s</text>`+"\n", pn.x0+left, pn.title)
		// Axes and five ticks on each.
		fmt.Fprintf(&b, `<path d="M%.0f %.0f V%.0f H%.0f" stroke="black" fill="none"/>`+"\n", x(0), y(maxY), y(0), x(maxStacks))
		for i := 0; i <= 4; i++ {
			v := maxY * float64(i) / 4
			s := maxStacks * i / 4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%g</text>`+"\n", x(0)-5, y(v)+4, v)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%d</text>`+"\n", x(s), y(0)+16, s)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">stacks</text>`+"\n", x(maxStacks/2), y(0)+34)
		for _, line := range []struct {
			points []scalePoint
			color  string
		}{{before, "#c0392b"}, {after, "#2471a3"}} {
			if len(line.points) == 0 {
				continue
			}
			var pts []string
			for _, p := range line.points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.stacks), y(pn.value(p))))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(p.stacks), y(pn.value(p)), line.color)
			}
			fmt.Fprintf(&b, `<polyline points="%s" stroke="%s" stroke-width="2" fill="none"/>`+"\n", strings.Join(pts, " "), line.color)
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#c0392b">before: commit a2782d7</text>`+"\n", left, panelH+20)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#2471a3">after: %s</text>`+"\n", left+180, panelH+20, xmlEscape(caption))
	b.WriteString("</svg>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// niceCeil rounds an axis maximum up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
