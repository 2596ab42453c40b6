// Package window places maintenance windows, freeze windows and their exclusions in
// time: given a window as the API spells it and an instant, it says which window is open
// and which comes next. Recurring windows follow a 5-field cron schedule read on the wall
// clock of an IANA time zone. Everything here is pure: no clock is read, nothing is
// written.
package window

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	// The operator image may carry no zoneinfo; embedding it keeps timeZone working there.
	_ "time/tzdata"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// ErrInvalid marks a window the user must fix: it is never retried as is.
var ErrInvalid = errors.New("invalid window")

// cronParser reads the standard 5-field cron (minute hour day-of-month month day-of-week).
// Descriptors such as @every are refused: the API promises 5 fields.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Span is one window, [Start, End); a zero End means open-ended (a maintenance without a
// window in its spec: until deletion).
type Span struct {
	Start, End time.Time
}

// OpenEnded tells whether the window lasts until the resource is deleted.
func (s Span) OpenEnded() bool { return s.End.IsZero() }

// Contains tells whether t is inside [Start, End).
func (s Span) Contains(t time.Time) bool {
	return !t.Before(s.Start) && (s.OpenEnded() || t.Before(s.End))
}

// Position is where a window stands at one instant: the window it is in (Current, if
// any) and the next one to come (Next, if any). Both are nil for a one-off window that
// is over, or that never happens because it starts inside an exclusion (Skipped).
type Position struct {
	Current *Span
	Next    *Span
	Skipped bool
}

// Stamp formats an instant as status messages and events show it: RFC 3339, in UTC.
func Stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// MaintenanceAt places a maintenance's window (spec.window) at instant now; created is
// the resource's creation. An absent window is open from the resource's creation until
// its deletion. A recurring window starts at each activation of the schedule in its time
// zone; overlapping activations merge into one window, so a schedule that fires more
// often than duration keeps the nodes down. No window starts inside one of
// window.exclude.
//
// A merged window starts at its first activation, whichever activation now follows: the
// start is the window's identity (an entry released by hand before it belongs to an
// earlier window and starts afresh), so it must not move while the window lasts.
func MaintenanceAt(w *swarmv1.MaintenanceWindow, created, now time.Time) (Position, error) {
	if w == nil {
		return Position{Current: &Span{Start: created}}, nil
	}
	excluded, err := Exclusions(w.Exclude, "exclude")
	if err != nil {
		return Position{}, err
	}
	tw, err := parseTimeWindow(swarmv1.TimeWindow{Start: w.Start, Schedule: w.Schedule, TimeZone: w.TimeZone, Duration: w.Duration}, excluded)
	if err != nil {
		return Position{}, err
	}
	got, err := tw.at(now)
	if err == nil && got.Current != nil && tw.sched != nil {
		got.Current.Start = mergedStart(tw.sched, tw.d, got.Current.Start, created)
	}
	return got, err
}

// mergedStart walks back from start, an activation, over the earlier activations whose
// window overlaps the next one, to the first activation of the merged window. It stops
// at the first one at or before notBefore (the resource's creation): a schedule that
// always overlaps itself has been one window since then, and the walk stays short.
func mergedStart(sched activations, d time.Duration, start, notBefore time.Time) time.Time {
	for i := 0; i < maxMergedActivations && start.After(notBefore); i++ {
		// The earliest activation in (start-d, start) overlaps [start, start+d).
		earlier := sched.Next(start.Add(-d))
		if earlier.IsZero() || !earlier.Before(start) {
			break
		}
		start = earlier
	}
	return start
}

// Exclusions returns whether an instant lies inside one of the windows; field names
// them in errors (field[i]). Each window is parsed here, once: a schedule passes over
// thousands of activations inside a long exclusion, and each is checked.
func Exclusions(list []swarmv1.TimeWindow, field string) (func(time.Time) bool, error) {
	if len(list) == 0 {
		return nil, nil
	}
	parsed := make([]timeWindow, len(list))
	for i := range list {
		var err error
		if parsed[i], err = parseTimeWindow(list[i], nil); err == nil {
			_, err = parsed[i].at(time.Time{}) // a schedule that never fires
		}
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
	}
	return func(t time.Time) bool {
		for _, w := range parsed {
			if at, err := w.at(t); err == nil && at.Current != nil {
				return true
			}
		}
		return false
	}, nil
}

// At places one window (a freeze, or an exclusion) at instant now; a window whose
// start makes excluded true does not happen (nil: none is). Overlapping activations of a
// schedule merge: the current window runs from the earliest activation whose duration
// still covers now to the end of the last activation up to now (MaintenanceAt, unlike
// At, keeps the first activation of the merged window as its start).
func At(w swarmv1.TimeWindow, excluded func(time.Time) bool, now time.Time) (Position, error) {
	tw, err := parseTimeWindow(w, excluded)
	if err != nil {
		return Position{}, err
	}
	return tw.at(now)
}

// timeWindow is a TimeWindow checked and parsed, to be placed at any instant: a one-off
// span, or the activations of a schedule and their duration.
type timeWindow struct {
	once    *Span
	sched   activations
	d       time.Duration
	skipped bool // a one-off window starting inside an exclusion
}

// parseTimeWindow checks w and parses its schedule; activations for which excluded is
// true are dropped (nil: none is).
func parseTimeWindow(w swarmv1.TimeWindow, excluded func(time.Time) bool) (timeWindow, error) {
	d := w.Duration.Duration
	if d <= 0 {
		return timeWindow{}, fmt.Errorf("%w: duration must be positive, got %q", ErrInvalid, w.Duration.Duration)
	}
	switch {
	case w.Start != nil && w.Schedule != "":
		return timeWindow{}, fmt.Errorf("%w: set start or schedule, not both", ErrInvalid)
	case w.Start != nil:
		if excluded != nil && excluded(w.Start.Time) {
			return timeWindow{skipped: true}, nil
		}
		return timeWindow{once: &Span{Start: w.Start.Time, End: w.Start.Add(d)}}, nil
	case w.Schedule != "":
		sched, err := parseSchedule(w.Schedule, w.TimeZone)
		if err != nil {
			return timeWindow{}, err
		}
		if excluded == nil {
			return timeWindow{sched: sched, d: d}, nil
		}
		return timeWindow{sched: skipping{sched: sched, excluded: excluded}, d: d}, nil
	default:
		return timeWindow{}, fmt.Errorf("%w: set start (one-off) or schedule (recurring), or remove the window to start now", ErrInvalid)
	}
}

// at is where the window stands at instant now.
func (w timeWindow) at(now time.Time) (Position, error) {
	switch {
	case w.skipped:
		return Position{Skipped: true}, nil
	case w.once != nil:
		return oneOff(*w.once, now), nil
	}
	return recurring(w.sched, w.d, now)
}

// activations is a schedule: the first activation strictly after t, or zero.
type activations interface{ Next(t time.Time) time.Time }

// maxSkipped bounds the activations passed over inside exclusions (an hourly schedule
// excluded for a month is about 720).
const maxSkipped = 5000

// skipping drops the activations that fall inside an exclusion.
type skipping struct {
	sched    activations
	excluded func(time.Time) bool
}

func (s skipping) Next(t time.Time) time.Time {
	a := s.sched.Next(t)
	for i := 0; i < maxSkipped && !a.IsZero() && s.excluded(a); i++ {
		a = s.sched.Next(a)
	}
	if !a.IsZero() && s.excluded(a) {
		return time.Time{}
	}
	return a
}

func oneOff(s Span, now time.Time) Position {
	switch {
	case now.Before(s.Start):
		return Position{Next: &s}
	case s.Contains(now):
		return Position{Current: &s}
	}
	return Position{}
}

// parseSchedule parses a 5-field cron expression read in the IANA time zone tz (UTC when
// empty).
func parseSchedule(expr, tz string) (*wallSchedule, error) {
	// The time zone has its own field; cron's own TZ= prefix would compete with it (and
	// robfig/cron panics on a prefix without a schedule).
	if t := strings.TrimSpace(expr); strings.HasPrefix(t, "TZ=") || strings.HasPrefix(t, "CRON_TZ=") {
		return nil, fmt.Errorf("%w: schedule %q: set the time zone in timeZone, not in the schedule", ErrInvalid, expr)
	}
	loc, err := loadZone(tz)
	if err != nil {
		return nil, err
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: schedule %q is not a 5-field cron expression: %w", ErrInvalid, expr, err)
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("%w: schedule %q is not a 5-field cron expression", ErrInvalid, expr)
	}
	// robfig/cron steps through real time in loc, so a time in a daylight saving gap
	// never matches (the activation is skipped) and one in the repeated hour matches
	// twice. It reads wall clocks instead, in UTC, where each exists once.
	spec.Location = time.UTC
	return &wallSchedule{spec: spec, loc: loc}, nil
}

// wallSchedule is a cron schedule over the wall clock of loc. A scheduled wall time
// that does not exist (spring forward) fires at the first instant after it, when the
// clock jumps (03:00 in Europe/Paris); several such times fire once. One that exists
// twice (fall back) fires at its first occurrence only. Durations are real elapsed
// time: a window is [activation, activation+duration).
type wallSchedule struct {
	spec *cron.SpecSchedule // read in UTC, standing for loc's wall clock
	loc  *time.Location
}

// Next returns the first activation strictly after t (at whole seconds), or zero.
func (s *wallSchedule) Next(t time.Time) time.Time {
	wall := asWall(t.In(s.loc))
	for i := 0; i < 1000; i++ { // each round passes one activation that fired already
		wall = s.spec.Next(wall)
		if wall.IsZero() {
			return time.Time{}
		}
		if a := s.instant(wall); a.After(t) {
			return a
		}
	}
	return time.Time{}
}

// instant is the first instant at which loc's clock shows wall, or, when it never
// does (a gap), the instant the clock jumps over it.
func (s *wallSchedule) instant(wall time.Time) time.Time {
	a := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, s.loc)
	switch shown := asWall(a); {
	case shown.After(wall): // a is past the jump: it starts the zone after it
		start, _ := a.ZoneBounds()
		return start
	case shown.Before(wall): // a is before the jump, which ends its zone
		_, end := a.ZoneBounds()
		return end
	}
	// An earlier instant shows wall too when the clock was set back over it.
	if start, _ := a.ZoneBounds(); !start.IsZero() {
		_, before := start.Add(-time.Nanosecond).Zone()
		_, after := a.Zone()
		if earlier := a.Add(time.Duration(after-before) * time.Second); earlier.Before(start) && asWall(earlier).Equal(wall) {
			return earlier
		}
	}
	return a
}

// asWall is t's wall clock as a UTC time.
func asWall(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// loadZone loads an IANA zone. "Local" is refused: it would depend on where the operator
// runs.
func loadZone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	if tz == "Local" {
		return nil, fmt.Errorf("%w: timeZone %q depends on the operator's host: use an IANA name such as Europe/Paris", ErrInvalid, tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: timeZone %q is not an IANA time zone: %w", ErrInvalid, tz, err)
	}
	return loc, nil
}

// maxMergedActivations bounds the walk over activations that fall inside one window
// (a schedule every minute with a 1-week duration is about 10,000).
const maxMergedActivations = 20000

func recurring(sched activations, d time.Duration, now time.Time) (Position, error) {
	// A window [a, a+d) contains now when a is in (now-d, now]. cron's Next is strictly
	// after its argument, at whole seconds, which is exactly that lower bound.
	first := sched.Next(now.Add(-d))
	if first.IsZero() {
		return Position{}, fmt.Errorf("%w: schedule never fires", ErrInvalid)
	}
	if first.After(now) {
		return Position{Next: &Span{Start: first, End: first.Add(d)}}, nil
	}
	cur := Span{Start: first, End: first.Add(d)}
	// Later activations up to now extend the window they overlap.
	for i, a := 0, sched.Next(first); i < maxMergedActivations && !a.IsZero() && !a.After(now); i, a = i+1, sched.Next(a) {
		cur.End = a.Add(d)
	}
	w := Position{Current: &cur}
	// The next window is the first activation not already inside the current one.
	if a := sched.Next(cur.End.Add(-time.Nanosecond)); !a.IsZero() {
		w.Next = &Span{Start: a, End: a.Add(d)}
	}
	return w, nil
}
