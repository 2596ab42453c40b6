package window_test

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/window"
)

func TestMaintenanceWindowComputation(t *testing.T) {
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
	created := at("2026-11-20T08:00:00Z")
	sundaySeoul := &swarmv1.MaintenanceWindow{Schedule: "0 2 * * SUN", TimeZone: "Asia/Seoul", Duration: dur(2 * time.Hour)}

	cases := map[string]struct {
		window      *swarmv1.MaintenanceWindow
		now         time.Time
		wantCurrent *window.Span
		wantNext    *window.Span
	}{
		"no window is open from creation until deletion": {
			now:         at("2026-11-25T12:00:00Z"),
			wantCurrent: &window.Span{Start: created},
		},
		"one-off window before its start is the next window": {
			window:   &swarmv1.MaintenanceWindow{Start: startAt("2026-11-27T02:00:00Z"), Duration: dur(2 * time.Hour)},
			now:      at("2026-11-25T12:00:00Z"),
			wantNext: &window.Span{Start: at("2026-11-27T02:00:00Z"), End: at("2026-11-27T04:00:00Z")},
		},
		"one-off window is open from its start": {
			window:      &swarmv1.MaintenanceWindow{Start: startAt("2026-11-27T02:00:00Z"), Duration: dur(2 * time.Hour)},
			now:         at("2026-11-27T02:00:00Z"),
			wantCurrent: &window.Span{Start: at("2026-11-27T02:00:00Z"), End: at("2026-11-27T04:00:00Z")},
		},
		"one-off window is closed at its end": {
			window: &swarmv1.MaintenanceWindow{Start: startAt("2026-11-27T02:00:00Z"), Duration: dur(2 * time.Hour)},
			now:    at("2026-11-27T04:00:00Z"),
		},
		"recurring window in Asia/Seoul starts Sunday 02:00 KST, Saturday 17:00 UTC": {
			window:   sundaySeoul,
			now:      at("2026-11-25T12:00:00Z"),
			wantNext: &window.Span{Start: at("2026-11-28T17:00:00Z"), End: at("2026-11-28T19:00:00Z")},
		},
		"recurring window without time zone reads the schedule in UTC": {
			window:   &swarmv1.MaintenanceWindow{Schedule: "0 2 * * SUN", Duration: dur(2 * time.Hour)},
			now:      at("2026-11-25T12:00:00Z"),
			wantNext: &window.Span{Start: at("2026-11-29T02:00:00Z"), End: at("2026-11-29T04:00:00Z")},
		},
		"recurring window in progress is current and the next is a week later": {
			window:      sundaySeoul,
			now:         at("2026-11-28T18:00:00Z"),
			wantCurrent: &window.Span{Start: at("2026-11-28T17:00:00Z"), End: at("2026-11-28T19:00:00Z")},
			wantNext:    &window.Span{Start: at("2026-12-05T17:00:00Z"), End: at("2026-12-05T19:00:00Z")},
		},
		"recurring window is closed at its end": {
			window:   sundaySeoul,
			now:      at("2026-11-28T19:00:00Z"),
			wantNext: &window.Span{Start: at("2026-12-05T17:00:00Z"), End: at("2026-12-05T19:00:00Z")},
		},
		"recurring windows that overlap merge into one, from the first activation": {
			window:      &swarmv1.MaintenanceWindow{Schedule: "0 8-11 * * *", Duration: dur(90 * time.Minute)},
			now:         at("2026-11-25T10:15:00Z"),
			wantCurrent: &window.Span{Start: at("2026-11-25T08:00:00Z"), End: at("2026-11-25T11:30:00Z")},
			wantNext:    &window.Span{Start: at("2026-11-26T08:00:00Z"), End: at("2026-11-26T09:30:00Z")},
		},
		"a schedule that always overlaps itself is one window since the creation": {
			window:      &swarmv1.MaintenanceWindow{Schedule: "0 * * * *", Duration: dur(90 * time.Minute)},
			now:         at("2026-11-25T10:15:00Z"),
			wantCurrent: &window.Span{Start: at("2026-11-20T08:00:00Z"), End: at("2026-11-25T11:30:00Z")},
			wantNext:    &window.Span{Start: at("2026-11-25T12:00:00Z"), End: at("2026-11-25T13:30:00Z")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := window.MaintenanceAt(tc.window, created, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSpan(got.Current, tc.wantCurrent) {
				t.Errorf("current window = %s, want %s", spanString(got.Current), spanString(tc.wantCurrent))
			}
			if !sameSpan(got.Next, tc.wantNext) {
				t.Errorf("next window = %s, want %s", spanString(got.Next), spanString(tc.wantNext))
			}
		})
	}
}

func TestMaintenanceWindowRejectsBadInput(t *testing.T) {
	dur := metav1.Duration{Duration: time.Hour}
	start := metav1.NewTime(time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC))
	cases := map[string]struct {
		window  swarmv1.MaintenanceWindow
		wantMsg string
	}{
		"a cron expression with four fields":        {swarmv1.MaintenanceWindow{Schedule: "0 2 * *", Duration: dur}, "not a 5-field cron"},
		"a cron expression with seconds (6 fields)": {swarmv1.MaintenanceWindow{Schedule: "0 0 2 * * SUN", Duration: dur}, "not a 5-field cron"},
		"a cron descriptor":                         {swarmv1.MaintenanceWindow{Schedule: "@every 1h", Duration: dur}, "not a 5-field cron"},
		"an out-of-range hour":                      {swarmv1.MaintenanceWindow{Schedule: "0 25 * * *", Duration: dur}, "not a 5-field cron"},
		"a schedule that never fires":               {swarmv1.MaintenanceWindow{Schedule: "0 0 30 2 *", Duration: dur}, "never fires"},
		"an unknown time zone":                      {swarmv1.MaintenanceWindow{Schedule: "0 2 * * *", TimeZone: "Mars/Olympus_Mons", Duration: dur}, "not an IANA time zone"},
		"the operator's local time zone":            {swarmv1.MaintenanceWindow{Schedule: "0 2 * * *", TimeZone: "Local", Duration: dur}, "depends on the operator's host"},
		"a time zone inside the schedule":           {swarmv1.MaintenanceWindow{Schedule: "CRON_TZ=Asia/Seoul 0 2 * * *", Duration: dur}, "set the time zone in timeZone"},
		"a time zone prefix alone":                  {swarmv1.MaintenanceWindow{Schedule: "TZ=UTC", Duration: dur}, "set the time zone in timeZone"},
		"a window without duration":                 {swarmv1.MaintenanceWindow{Start: &start}, "duration must be positive"},
		"a recurring window without duration":       {swarmv1.MaintenanceWindow{Schedule: "0 2 * * *"}, "duration must be positive"},
		"both start and schedule":                   {swarmv1.MaintenanceWindow{Start: &start, Schedule: "0 2 * * *", Duration: dur}, "not both"},
		"neither start nor schedule":                {swarmv1.MaintenanceWindow{Duration: dur}, "set start (one-off) or schedule"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := tc.window
			_, err := window.MaintenanceAt(&w, time.Now(), time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
			if !errors.Is(err, window.ErrInvalid) {
				t.Fatalf("error = %v, want an invalid window", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}
}

func sameSpan(a, b *window.Span) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Start.Equal(b.Start) && a.End.Equal(b.End)
}

func spanString(s *window.Span) string {
	if s == nil {
		return "none"
	}
	if s.OpenEnded() {
		return "[" + s.Start.UTC().Format(time.RFC3339) + ", until deleted)"
	}
	return "[" + s.Start.UTC().Format(time.RFC3339) + ", " + s.End.UTC().Format(time.RFC3339) + ")"
}

// Daylight saving time in Europe/Paris, 2025: on 30 March 02:00-03:00 does not
// exist (CET to CEST at 01:00 UTC); on 26 October 02:00-03:00 happens twice (CEST
// to CET at 01:00 UTC).
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func parisWindow(schedule string, d time.Duration) *swarmv1.MaintenanceWindow {
	return &swarmv1.MaintenanceWindow{Schedule: schedule, TimeZone: "Europe/Paris", Duration: metav1.Duration{Duration: d}}
}

func checkWindows(t *testing.T, w *swarmv1.MaintenanceWindow, now time.Time, wantCurrent, wantNext *window.Span) {
	t.Helper()
	got, err := window.MaintenanceAt(w, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !sameSpan(got.Current, wantCurrent) {
		t.Errorf("at %s: current window = %s, want %s", now.Format(time.RFC3339), spanString(got.Current), spanString(wantCurrent))
	}
	if !sameSpan(got.Next, wantNext) {
		t.Errorf("at %s: next window = %s, want %s", now.Format(time.RFC3339), spanString(got.Next), spanString(wantNext))
	}
}

// TestWindowInDSTGapFiresAtFirstValidInstant: a scheduled time that does not exist
// (spring forward) fires at the first instant after it, 03:00 local, once.
func TestWindowInDSTGapFiresAtFirstValidInstant(t *testing.T) {
	sunday := parisWindow("0 2 * * 0", time.Hour)
	gapWindow := &window.Span{Start: utc(t, "2025-03-30T01:00:00Z"), End: utc(t, "2025-03-30T02:00:00Z")} // 03:00-04:00 CEST
	weekLater := &window.Span{Start: utc(t, "2025-04-06T00:00:00Z"), End: utc(t, "2025-04-06T01:00:00Z")} // 02:00 CEST
	checkWindows(t, sunday, utc(t, "2025-03-29T12:00:00Z"), nil, gapWindow)
	checkWindows(t, sunday, utc(t, "2025-03-30T01:30:00Z"), gapWindow, weekLater)
	checkWindows(t, sunday, utc(t, "2025-03-30T02:00:00Z"), nil, weekLater)

	// Several times inside the gap fire once, at 03:00.
	quarters := parisWindow("*/15 2 * * *", 10*time.Minute)
	at3 := &window.Span{Start: utc(t, "2025-03-30T01:00:00Z"), End: utc(t, "2025-03-30T01:10:00Z")}
	nextDay := &window.Span{Start: utc(t, "2025-03-31T00:00:00Z"), End: utc(t, "2025-03-31T00:10:00Z")}
	checkWindows(t, quarters, utc(t, "2025-03-30T00:50:00Z"), nil, at3)
	checkWindows(t, quarters, utc(t, "2025-03-30T01:05:00Z"), at3, nextDay)
	checkWindows(t, quarters, utc(t, "2025-03-30T01:10:00Z"), nil, nextDay)
}

// TestWindowAcrossFallBackLastsItsDuration: a 1h window at 02:30 on the day 02:30
// happens twice lasts 1h of real time.
func TestWindowAcrossFallBackLastsItsDuration(t *testing.T) {
	w := parisWindow("30 2 * * *", time.Hour)
	first := &window.Span{Start: utc(t, "2025-10-26T00:30:00Z"), End: utc(t, "2025-10-26T01:30:00Z")}    // 02:30 CEST - 02:30 CET
	tomorrow := &window.Span{Start: utc(t, "2025-10-27T01:30:00Z"), End: utc(t, "2025-10-27T02:30:00Z")} // 02:30 CET
	checkWindows(t, w, utc(t, "2025-10-25T12:00:00Z"), nil, first)
	checkWindows(t, w, utc(t, "2025-10-26T01:00:00Z"), first, tomorrow)
	checkWindows(t, w, utc(t, "2025-10-26T01:30:00Z"), nil, tomorrow)
	checkWindows(t, w, utc(t, "2025-10-26T02:00:00Z"), nil, tomorrow)

	// A window that starts before the change and spans it lasts its duration too.
	long := parisWindow("0 1 * * *", 3*time.Hour)
	span3h := &window.Span{Start: utc(t, "2025-10-25T23:00:00Z"), End: utc(t, "2025-10-26T02:00:00Z")} // 01:00 CEST - 03:00 CET
	checkWindows(t, long, utc(t, "2025-10-26T01:45:00Z"), span3h, &window.Span{Start: utc(t, "2025-10-27T00:00:00Z"), End: utc(t, "2025-10-27T03:00:00Z")})
}

// TestRepeatedHourFiresOnce: each scheduled time in the repeated hour fires once, at
// its first occurrence (CEST).
func TestRepeatedHourFiresOnce(t *testing.T) {
	w := parisWindow("*/20 2 * * *", 5*time.Minute)
	starts := map[string]bool{} // RFC 3339 in UTC: time.Time is no map key
	for now := utc(t, "2025-10-25T22:00:00Z"); now.Before(utc(t, "2025-10-26T04:00:00Z")); now = now.Add(time.Minute) {
		got, err := window.MaintenanceAt(w, time.Time{}, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*window.Span{got.Current, got.Next} {
			if s != nil && s.Start.Before(utc(t, "2025-10-26T04:00:00Z")) {
				starts[s.Start.UTC().Format(time.RFC3339)] = true
				if s.End.Sub(s.Start) != 5*time.Minute {
					t.Errorf("window %s does not last 5m", spanString(s))
				}
			}
		}
	}
	want := []string{"2025-10-26T00:00:00Z", "2025-10-26T00:20:00Z", "2025-10-26T00:40:00Z"}
	if len(starts) != len(want) {
		var got []string
		for s := range starts {
			got = append(got, s)
		}
		sort.Strings(got)
		t.Errorf("windows start at %v, want %v", got, want)
	}
	for _, s := range want {
		if !starts[s] {
			t.Errorf("no window at %s", s)
		}
	}
}

// TestMergedRecurringWindowKeepsTheStartOfItsFirstActivation: activations at 02:00,
// 02:10 and 02:20 lasting 30 minutes are one window, 02:00-02:50, which starts at 02:00
// whichever activation is the latest; a gap of at least the duration ends it. A
// schedule that always overlaps itself starts at the last activation before creation.
func TestMergedRecurringWindowKeepsTheStartOfItsFirstActivation(t *testing.T) {
	merged := &swarmv1.MaintenanceWindow{Schedule: "0,10,20 2 * * *", Duration: metav1.Duration{Duration: 30 * time.Minute}}
	tomorrow := &window.Span{Start: utc(t, "2026-11-28T02:00:00Z"), End: utc(t, "2026-11-28T02:30:00Z")}
	for now, end := range map[string]string{
		"2026-11-27T02:05:00Z": "2026-11-27T02:30:00Z",
		"2026-11-27T02:15:00Z": "2026-11-27T02:40:00Z",
		"2026-11-27T02:35:00Z": "2026-11-27T02:50:00Z",
		"2026-11-27T02:49:59Z": "2026-11-27T02:50:00Z",
	} {
		checkWindows(t, merged, utc(t, now), &window.Span{Start: utc(t, "2026-11-27T02:00:00Z"), End: utc(t, end)}, tomorrow)
	}
	checkWindows(t, merged, utc(t, "2026-11-27T02:50:00Z"), nil, tomorrow)

	// 02:00 and 02:30 only touch: the second is a window of its own.
	touching := &swarmv1.MaintenanceWindow{Schedule: "0,30 2 * * *", Duration: metav1.Duration{Duration: 30 * time.Minute}}
	checkWindows(t, touching, utc(t, "2026-11-27T02:45:00Z"),
		&window.Span{Start: utc(t, "2026-11-27T02:30:00Z"), End: utc(t, "2026-11-27T03:00:00Z")}, tomorrow)

	always := &swarmv1.MaintenanceWindow{Schedule: "0 * * * *", Duration: metav1.Duration{Duration: 90 * time.Minute}}
	for _, now := range []string{"2026-11-27T02:05:00Z", "2026-12-27T02:05:00Z"} {
		got, err := window.MaintenanceAt(always, utc(t, "2026-11-20T08:30:00Z"), utc(t, now))
		if err != nil {
			t.Fatal(err)
		}
		if got.Current == nil || !got.Current.Start.Equal(utc(t, "2026-11-20T08:00:00Z")) {
			t.Errorf("at %s: current window %s, want it open since 2026-11-20T08:00:00Z", now, spanString(got.Current))
		}
	}
}
