package window_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/window"
)

// window.exclude: no window starts inside a blackout.
func TestMaintenanceWindowExclusions(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	startAt := func(s string) *metav1.Time { v := metav1.NewTime(at(s)); return &v }
	dur := func(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }
	christmas := swarmv1.TimeWindow{Start: startAt("2026-12-24T00:00:00Z"), Duration: dur(72 * time.Hour)}
	// Every night at 02:00 UTC for 2h.
	nightly := func(exclude ...swarmv1.TimeWindow) *swarmv1.MaintenanceWindow {
		return &swarmv1.MaintenanceWindow{Schedule: "0 2 * * *", Duration: dur(2 * time.Hour), Exclude: exclude}
	}
	cases := map[string]struct {
		window      *swarmv1.MaintenanceWindow
		now         time.Time
		wantCurrent *window.Span
		wantNext    *window.Span
	}{
		"activations inside the blackout are skipped: the next window is after it": {
			window:   nightly(christmas),
			now:      at("2026-12-23T12:00:00Z"),
			wantNext: &window.Span{Start: at("2026-12-27T02:00:00Z"), End: at("2026-12-27T04:00:00Z")},
		},
		"inside the blackout no window is open": {
			window:   nightly(christmas),
			now:      at("2026-12-25T02:30:00Z"),
			wantNext: &window.Span{Start: at("2026-12-27T02:00:00Z"), End: at("2026-12-27T04:00:00Z")},
		},
		"a window that started before the blackout runs to its end": {
			window:      nightly(swarmv1.TimeWindow{Start: startAt("2026-12-23T03:00:00Z"), Duration: dur(24 * time.Hour)}),
			now:         at("2026-12-23T03:30:00Z"),
			wantCurrent: &window.Span{Start: at("2026-12-23T02:00:00Z"), End: at("2026-12-23T04:00:00Z")},
			wantNext:    &window.Span{Start: at("2026-12-25T02:00:00Z"), End: at("2026-12-25T04:00:00Z")},
		},
		"a recurring exclusion: no maintenance starts on Sundays (Berlin)": {
			window: nightly(swarmv1.TimeWindow{Schedule: "0 0 * * SUN", TimeZone: "Europe/Berlin", Duration: dur(24 * time.Hour)}),
			// Sunday 6 Dec 2026 02:00 UTC is Sunday 03:00 in Berlin: skipped.
			now:      at("2026-12-05T12:00:00Z"),
			wantNext: &window.Span{Start: at("2026-12-07T02:00:00Z"), End: at("2026-12-07T04:00:00Z")},
		},
		"a one-off window that would start in the blackout does not happen": {
			window: &swarmv1.MaintenanceWindow{Start: startAt("2026-12-25T02:00:00Z"), Duration: dur(2 * time.Hour), Exclude: []swarmv1.TimeWindow{christmas}},
			now:    at("2026-12-20T00:00:00Z"),
		},
		"a one-off window outside the blackout is untouched": {
			window:   &swarmv1.MaintenanceWindow{Start: startAt("2026-12-28T02:00:00Z"), Duration: dur(2 * time.Hour), Exclude: []swarmv1.TimeWindow{christmas}},
			now:      at("2026-12-20T00:00:00Z"),
			wantNext: &window.Span{Start: at("2026-12-28T02:00:00Z"), End: at("2026-12-28T04:00:00Z")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w, err := window.MaintenanceAt(tc.window, at("2026-11-01T00:00:00Z"), tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSpan(w.Current, tc.wantCurrent) || !sameSpan(w.Next, tc.wantNext) {
				t.Fatalf("current %v next %v; want current %v next %v", w.Current, w.Next, tc.wantCurrent, tc.wantNext)
			}
		})
	}
}

func TestMaintenanceWindowInvalidExclusionNamesIt(t *testing.T) {
	w := &swarmv1.MaintenanceWindow{Schedule: "0 2 * * *", Duration: metav1.Duration{Duration: time.Hour},
		Exclude: []swarmv1.TimeWindow{
			{Schedule: "0 0 * * SUN", Duration: metav1.Duration{Duration: time.Hour}},
			{Schedule: "0 0 * * SUN", TimeZone: "Nowhere/Land", Duration: metav1.Duration{Duration: time.Hour}},
		}}
	_, err := window.MaintenanceAt(w, time.Now(), time.Now())
	if !errors.Is(err, window.ErrInvalid) || !strings.Contains(err.Error(), "exclude[1]") || !strings.Contains(err.Error(), "Nowhere/Land") {
		t.Fatalf("want an invalid window naming exclude[1], got %v", err)
	}
}

// The exclusions are parsed when a computation starts, not again at each instant it
// checks: a nightly schedule passes over every activation of a month-long blackout. A
// spec changed after window.Exclusions() returned cannot be seen unless it is parsed again.
func TestMaintenanceExclusionsAreParsedOncePerComputation(t *testing.T) {
	list := []swarmv1.TimeWindow{{Schedule: "0 0 * * SUN", TimeZone: "Europe/Berlin", Duration: metav1.Duration{Duration: 24 * time.Hour}}}
	excluded, err := window.Exclusions(list, "exclude")
	if err != nil {
		t.Fatal(err)
	}
	list[0].TimeZone = "Nowhere/Land"
	sunday := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC) // 03:00 in Berlin
	if !excluded(sunday) {
		t.Fatal("the exclusion was read again at the instant checked: it no longer excludes Sunday")
	}
}

// A nightly window and a month-long recurring blackout: a computation that checks
// every skipped activation against the exclusion.
func BenchmarkMaintenanceWindowsWithALongExclusion(b *testing.B) {
	w := &swarmv1.MaintenanceWindow{Schedule: "0 2 * * *", Duration: metav1.Duration{Duration: 2 * time.Hour},
		Exclude: []swarmv1.TimeWindow{{Schedule: "0 0 1 12 *", TimeZone: "Europe/Berlin", Duration: metav1.Duration{Duration: 31 * 24 * time.Hour}}}}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for b.Loop() {
		if _, err := window.MaintenanceAt(w, now, now); err != nil {
			b.Fatal(err)
		}
	}
}
