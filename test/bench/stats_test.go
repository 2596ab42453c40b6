package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"
)

// samples is a list of durations measured once per change.
type samples []time.Duration

// percentile is the nearest-rank percentile (p in 0..100): the smallest sample with at
// least p% of the samples at or below it. With 20 samples p95 is the 19th smallest.
func (s samples) percentile(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := append(samples(nil), s...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// report adds "<unit>/p50" and "<unit>/p95" (in milliseconds, or seconds when unit
// is "s") to the benchmark's line.
func (s samples) report(b *testing.B, name, unit string) {
	scale := float64(time.Millisecond)
	if unit == "s" {
		scale = float64(time.Second)
	}
	b.ReportMetric(float64(s.percentile(50))/scale, name+"-"+unit+"/p50")
	b.ReportMetric(float64(s.percentile(95))/scale, name+"-"+unit+"/p95")
}

// String lists the samples in milliseconds, for the log.
func (s samples) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d.Milliseconds())
	}
	return "[" + strings.Join(parts, " ") + "] ms"
}

// ratio of medians.
func medianRatio(a, b samples) float64 {
	if len(b) == 0 || b.percentile(50) == 0 {
		return math.NaN()
	}
	return float64(a.percentile(50)) / float64(b.percentile(50))
}

func TestPercentile(t *testing.T) {
	var s samples
	for i := 20; i >= 1; i-- { // 20..1 ms, unsorted on purpose
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 10 * time.Millisecond}, {95, 19 * time.Millisecond}, {100, 20 * time.Millisecond}, {0, time.Millisecond}} {
		if got := s.percentile(c.p); got != c.want {
			t.Errorf("p%g = %s, want %s", c.p, got, c.want)
		}
	}
	if s[0] != 20*time.Millisecond {
		t.Error("percentile sorted the caller's slice")
	}
	if got := (samples{}).percentile(50); got != 0 {
		t.Errorf("empty p50 = %s", got)
	}
	if r := medianRatio(samples{3 * time.Second}, samples{6 * time.Second}); r != 0.5 {
		t.Errorf("ratio %g", r)
	}
}

func TestNoBedWithoutBenchmarks(t *testing.T) {
	// `go test ./...` runs this package without -bench: nothing may have started.
	if bed != nil || stopOp != nil || runningSim != nil {
		t.Fatal("the test bed started although no benchmark ran")
	}
}
