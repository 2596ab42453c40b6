package swarmstack

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
	"github.com/swarmops/swarm-operator/internal/window"
)

// The freeze and maintenance gates of the stack reconciler, on the in-memory Swarm.

func v2Compose() *string {
	v2 := strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v2")
	return &v2
}

func oneOffFreeze(start time.Time, d time.Duration) swarmv1.TimeWindow {
	s := metav1.NewTime(start)
	return swarmv1.TimeWindow{Start: &s, Duration: metav1.Duration{Duration: d}}
}

// appliedStack is a stack whose v1 is applied and converged.
func appliedStack(t *testing.T) *stackEnv {
	t.Helper()
	e := newStackEnv(t)
	e.sw.AutoConverge = true
	e.createStack("numbers", twoServices)
	e.passes("numbers", 3)
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("v1 not applied: %s %s", r.Reason, r.Message)
	}
	return e
}

func reconcilingReason(s *swarmv1.SwarmStack) (string, string) {
	if c := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReconciling); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason, c.Message
	}
	return "", ""
}

func TestFrozenRevisionWaitsAndIsAppliedWhenTheWindowEnds(t *testing.T) {
	e := appliedStack(t)
	end := e.clk.Now().Add(30 * time.Minute)
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{oneOffFreeze(e.clk.Now().Add(-time.Hour), 90*time.Minute)}
		s.Spec.Compose.Files[0].Inline = v2Compose()
	})
	before := e.writes()
	res, err := e.pass("numbers")
	if err != nil {
		t.Fatal(err)
	}
	if e.writes() != before || e.image("numbers_api") != "numbers-api:v1" {
		t.Fatalf("a frozen revision was written: %v", e.sw.Writes()[before:])
	}
	reason, msg := reconcilingReason(e.stack("numbers"))
	if reason != swarmv1.ReasonFrozen || !strings.Contains(msg, window.Stamp(end)) || !strings.Contains(msg, "spec.freeze[0]") {
		t.Fatalf("want Frozen until %s naming spec.freeze[0], got %s: %s", window.Stamp(end), reason, msg)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > freezePoll {
		t.Fatalf("requeue %s: want a look again within %s", res.RequeueAfter, freezePoll)
	}
	e.clk.Advance(29 * time.Minute)
	e.passes("numbers", 1)
	if e.image("numbers_api") != "numbers-api:v1" {
		t.Fatal("written before the freeze ended")
	}
	e.clk.Advance(time.Minute)
	e.passes("numbers", 3)
	if e.image("numbers_api") != "numbers-api:v2" {
		t.Fatal("not written after the freeze ended")
	}
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("after the freeze: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}

func TestFreezeOverrideAppliesOncePerNewValue(t *testing.T) {
	e := appliedStack(t)
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{oneOffFreeze(e.clk.Now(), 24*time.Hour)}
		s.Spec.Compose.Files[0].Inline = v2Compose()
	})
	e.passes("numbers", 1)
	if e.image("numbers_api") != "numbers-api:v1" {
		t.Fatal("frozen revision written")
	}
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Annotations = map[string]string{swarmv1.AnnotationOverrideFreeze: "hotfix-1"}
	})
	e.passes("numbers", 3)
	if e.image("numbers_api") != "numbers-api:v2" {
		t.Fatal("override did not apply the revision")
	}
	if s := e.stack("numbers"); s.Status.LastHandledOverrideFreeze != "hotfix-1" {
		t.Fatalf("override not recorded: %q", s.Status.LastHandledOverrideFreeze)
	}
	if !testenv.HasEvent(e.events(), eventFreezeOverridden) {
		t.Fatal("no event says the freeze was overridden")
	}
	// The same value does not let the next revision through.
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		v3 := strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v3")
		s.Spec.Compose.Files[0].Inline = &v3
	})
	e.passes("numbers", 2)
	if e.image("numbers_api") != "numbers-api:v2" {
		t.Fatal("an override value already used let a second revision through")
	}
	if reason, _ := reconcilingReason(e.stack("numbers")); reason != swarmv1.ReasonFrozen {
		t.Fatalf("want Frozen, got %q", reason)
	}
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Annotations[swarmv1.AnnotationOverrideFreeze] = "hotfix-2" })
	e.passes("numbers", 2)
	if e.image("numbers_api") != "numbers-api:v3" {
		t.Fatal("a new override value did not apply the revision")
	}
}

func TestRollbackRequestIsNeverFrozen(t *testing.T) {
	e := appliedStack(t)
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = v2Compose() })
	e.passes("numbers", 3)
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{oneOffFreeze(e.clk.Now(), 24*time.Hour)}
		s.Annotations = map[string]string{swarmv1.AnnotationRollback: "1"}
	})
	e.passes("numbers", 1)
	if got := e.image("numbers_api"); got != "numbers-api:v1" {
		t.Fatalf("rollback held by the freeze: api runs %s", got)
	}
}

func TestClusterFreezeInATimeZoneHoldsEveryStack(t *testing.T) {
	e := appliedStack(t)
	// 10:00 UTC on 1 Dec is 11:00 in Berlin; the freeze runs daily 09:00-12:00 Berlin time.
	var c swarmv1.SwarmCluster
	if err := e.c.Get(context.Background(), ktypes.NamespacedName{Namespace: stackNS, Name: "prod"}, &c); err != nil {
		t.Fatal(err)
	}
	c.Spec.Freeze = []swarmv1.TimeWindow{{Schedule: "0 9 * * *", TimeZone: "Europe/Berlin", Duration: metav1.Duration{Duration: 3 * time.Hour}}}
	if err := e.c.Update(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = v2Compose() })
	e.passes("numbers", 1)
	reason, msg := reconcilingReason(e.stack("numbers"))
	if reason != swarmv1.ReasonFrozen || !strings.Contains(msg, "2026-12-01T11:00:00Z") || !strings.Contains(msg, "SwarmCluster prod spec.freeze[0]") {
		t.Fatalf("want Frozen until 11:00 UTC by the cluster's freeze, got %s: %s", reason, msg)
	}
	if e.image("numbers_api") != "numbers-api:v1" {
		t.Fatal("frozen revision written")
	}
}

func TestInvalidFreezeStallsNamingTheFieldAndWritesNothing(t *testing.T) {
	e := appliedStack(t)
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{
			oneOffFreeze(e.clk.Now().Add(-48*time.Hour), time.Hour),
			{Schedule: "0 9 * * *", TimeZone: "Mars/Olympus", Duration: metav1.Duration{Duration: time.Hour}},
		}
		s.Spec.Compose.Files[0].Inline = v2Compose()
	})
	before := e.writes()
	if _, err := e.pass("numbers"); err == nil {
		t.Fatal("want a terminal error")
	}
	if e.writes() != before {
		t.Fatalf("wrote with an invalid freeze: %v", e.sw.Writes()[before:])
	}
	s := e.stack("numbers")
	st := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionStalled)
	if st == nil || st.Reason != swarmv1.ReasonInvalidFreeze || !strings.Contains(st.Message, "spec.freeze[1]") || !strings.Contains(st.Message, "Mars/Olympus") {
		t.Fatalf("want Stalled InvalidFreeze naming spec.freeze[1], got %+v", st)
	}
}

func TestFrozenUntilFollowsChainedWindows(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		rules []freezeRule
		want  time.Time
		field string
	}{
		"no window":             {},
		"a window that is over": {rules: []freezeRule{{field: "a", window: oneOffFreeze(now.Add(-2*time.Hour), time.Hour)}}},
		"a window to come":      {rules: []freezeRule{{field: "a", window: oneOffFreeze(now.Add(time.Hour), time.Hour)}}},
		"open now": {
			rules: []freezeRule{{field: "a", window: oneOffFreeze(now.Add(-time.Hour), 2*time.Hour)}},
			want:  now.Add(time.Hour), field: "a",
		},
		"a second window starting at the end of the first extends it": {
			rules: []freezeRule{
				{field: "b", window: oneOffFreeze(now.Add(time.Hour), time.Hour)},
				{field: "a", window: oneOffFreeze(now.Add(-time.Hour), 2*time.Hour)},
			},
			want: now.Add(2 * time.Hour), field: "b",
		},
		"a recurring window across midnight": {
			rules: []freezeRule{{field: "nightly", window: swarmv1.TimeWindow{Schedule: "0 8 * * *", Duration: metav1.Duration{Duration: 3 * time.Hour}}}},
			want:  time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), field: "nightly",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, field, err := frozenUntil(tc.rules, now)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) || field != tc.field {
				t.Fatalf("got %s by %q, want %s by %q", got, field, tc.want, tc.field)
			}
		})
	}
}

// drainingMaintenance is a maintenance of cluster prod whose status says Draining.
func drainingMaintenance(t *testing.T, e *stackEnv, name string, since time.Time) *swarmv1.SwarmNodeMaintenance {
	t.Helper()
	m := &swarmv1.SwarmNodeMaintenance{
		ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: name},
		Spec:       swarmv1.SwarmNodeMaintenanceSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "prod"}, Nodes: []string{"worker1"}},
	}
	if err := e.c.Create(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	at := metav1.NewTime(since)
	m.Status.Phase = swarmv1.PhaseDraining
	m.Status.Nodes = []swarmv1.MaintenanceNodeStatus{{Name: "worker1", ID: "w1", PreviousAvailability: "active", Availability: "drain", DrainedAt: &at}}
	if err := e.c.Status().Update(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewRevisionWaitsWhileAMaintenanceDrainsThenProceeds(t *testing.T) {
	e := appliedStack(t)
	m := drainingMaintenance(t, e, "kernel", e.clk.Now().Add(-time.Minute))
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = v2Compose() })
	before := e.writes()
	res, _ := e.pass("numbers")
	if e.writes() != before {
		t.Fatalf("wrote during a drain: %v", e.sw.Writes()[before:])
	}
	reason, msg := reconcilingReason(e.stack("numbers"))
	if reason != swarmv1.ReasonMaintenanceInProgress || !strings.Contains(msg, "SwarmNodeMaintenance kernel") {
		t.Fatalf("want MaintenanceInProgress naming kernel, got %s: %s", reason, msg)
	}
	if res.RequeueAfter != maintenancePoll {
		t.Fatalf("requeue %s, want %s", res.RequeueAfter, maintenancePoll)
	}
	// The drain ends: the revision goes on by itself.
	m.Status.Phase = swarmv1.PhaseInMaintenance
	if err := e.c.Status().Update(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e.passes("numbers", 3)
	if e.image("numbers_api") != "numbers-api:v2" {
		t.Fatal("not written once the drain ended")
	}
}

func TestRollbackAndOptOutDoNotWaitForADrain(t *testing.T) {
	e := appliedStack(t)
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = v2Compose() })
	e.passes("numbers", 3)
	drainingMaintenance(t, e, "kernel", e.clk.Now())
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Annotations = map[string]string{swarmv1.AnnotationRollback: "1"} })
	e.passes("numbers", 1)
	if got := e.image("numbers_api"); got != "numbers-api:v1" {
		t.Fatalf("rollback held by the drain: api runs %s", got)
	}
	// A stack that opts out rolls out during the drain.
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		no := false
		s.Spec.WaitForMaintenances = &no
		v3 := strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v3")
		s.Spec.Compose.Files[0].Inline = &v3
	})
	e.passes("numbers", 3)
	if got := e.image("numbers_api"); got != "numbers-api:v3" {
		t.Fatalf("opted-out stack held by the drain: api runs %s", got)
	}
}

func TestDeletedStackLeavesNoHeldRevisionSeries(t *testing.T) {
	e := newStackEnv(t)
	e.createStack("numbers", twoServices, func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{oneOffFreeze(e.clk.Now(), 24*time.Hour)}
	})
	e.passes("numbers", 2) // frozen: the gauge says so
	if err := e.c.Delete(context.Background(), e.stack("numbers")); err != nil {
		t.Fatal(err)
	}
	e.passes("numbers", 2)
	if metrics.StackRevisionHeld.DeleteLabelValues(stackNS, "numbers", swarmv1.ReasonFrozen) {
		t.Fatal("the deleted stack's held-revision series is still exported")
	}
}
