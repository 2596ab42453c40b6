package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
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
		wantCurrent *span
		wantNext    *span
	}{
		"no window is open from creation until deletion": {
			now:         at("2026-11-25T12:00:00Z"),
			wantCurrent: &span{start: created},
		},
		"one-off window before its start is the next window": {
			window:   &swarmv1.MaintenanceWindow{Start: startAt("2026-11-27T02:00:00Z"), Duration: dur(2 * time.Hour)},
			now:      at("2026-11-25T12:00:00Z"),
			wantNext: &span{start: at("2026-11-27T02:00:00Z"), end: at("2026-11-27T04:00:00Z")},
		},
		"one-off window is open from its start": {
			window:      &swarmv1.MaintenanceWindow{Start: startAt("2026-11-27T02:00:00Z"), Duration: dur(2 * time.Hour)},
			now:         at("2026-11-27T02:00:00Z"),
			wantCurrent: &span{start: at("2026-11-27T02:00:00Z"), end: at("2026-11-27T04:00:00Z")},
		},
		"one-off window is closed at its end": {
			window: &swarmv1.MaintenanceWindow{Start: startAt("2026-11-27T02:00:00Z"), Duration: dur(2 * time.Hour)},
			now:    at("2026-11-27T04:00:00Z"),
		},
		"recurring window in Asia/Seoul starts Sunday 02:00 KST, Saturday 17:00 UTC": {
			window:   sundaySeoul,
			now:      at("2026-11-25T12:00:00Z"),
			wantNext: &span{start: at("2026-11-28T17:00:00Z"), end: at("2026-11-28T19:00:00Z")},
		},
		"recurring window without time zone reads the schedule in UTC": {
			window:   &swarmv1.MaintenanceWindow{Schedule: "0 2 * * SUN", Duration: dur(2 * time.Hour)},
			now:      at("2026-11-25T12:00:00Z"),
			wantNext: &span{start: at("2026-11-29T02:00:00Z"), end: at("2026-11-29T04:00:00Z")},
		},
		"recurring window in progress is current and the next is a week later": {
			window:      sundaySeoul,
			now:         at("2026-11-28T18:00:00Z"),
			wantCurrent: &span{start: at("2026-11-28T17:00:00Z"), end: at("2026-11-28T19:00:00Z")},
			wantNext:    &span{start: at("2026-12-05T17:00:00Z"), end: at("2026-12-05T19:00:00Z")},
		},
		"recurring window is closed at its end": {
			window:   sundaySeoul,
			now:      at("2026-11-28T19:00:00Z"),
			wantNext: &span{start: at("2026-12-05T17:00:00Z"), end: at("2026-12-05T19:00:00Z")},
		},
		"recurring windows that overlap merge into one": {
			window:      &swarmv1.MaintenanceWindow{Schedule: "0 * * * *", Duration: dur(90 * time.Minute)},
			now:         at("2026-11-25T10:15:00Z"),
			wantCurrent: &span{start: at("2026-11-25T09:00:00Z"), end: at("2026-11-25T11:30:00Z")},
			wantNext:    &span{start: at("2026-11-25T12:00:00Z"), end: at("2026-11-25T13:30:00Z")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := computeWindows(tc.window, created, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSpan(got.current, tc.wantCurrent) {
				t.Errorf("current window = %s, want %s", spanString(got.current), spanString(tc.wantCurrent))
			}
			if !sameSpan(got.next, tc.wantNext) {
				t.Errorf("next window = %s, want %s", spanString(got.next), spanString(tc.wantNext))
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
			_, err := computeWindows(&w, time.Now(), time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
			if !errors.Is(err, errInvalidWindow) {
				t.Fatalf("error = %v, want an invalid window", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}
}

func sameSpan(a, b *span) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.start.Equal(b.start) && a.end.Equal(b.end)
}

func spanString(s *span) string {
	if s == nil {
		return "none"
	}
	if s.openEnded() {
		return "[" + s.start.UTC().Format(time.RFC3339) + ", until deleted)"
	}
	return "[" + s.start.UTC().Format(time.RFC3339) + ", " + s.end.UTC().Format(time.RFC3339) + ")"
}
