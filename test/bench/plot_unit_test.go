package bench

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"
)

func TestScalePlotDrawsBothCurvesInBothPanels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plot.svg")
	after := scalePoint{}.series([][3]float64{{1000, 4, 9}, {2000, 8, 18}})
	if err := writeScalePlot(path, "commit x <test>", simulationBefore, after); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if el, ok := tok.(xml.StartElement); ok {
			counts[el.Name.Local]++
		}
	}
	// Two panels, each with a line and a dot per point for the recorded curve and this run's.
	if counts["svg"] != 1 || counts["polyline"] != 4 || counts["circle"] != 2*(len(simulationBefore)+len(after)) {
		t.Fatalf("elements %v, want 1 svg, 4 polylines, %d circles", counts, 2*(len(simulationBefore)+len(after)))
	}
	if err := writeScalePlot(path, "", nil, nil); err == nil {
		t.Fatal("a plot without points was written")
	}
}
