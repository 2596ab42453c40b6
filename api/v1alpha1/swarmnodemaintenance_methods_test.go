package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMaintenanceNodeStatusSaysWhatTheOperatorHolds(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC))
	cases := map[string]struct {
		entry                        MaintenanceNodeStatus
		held, writePending, usesSlot bool
	}{
		"never taken": {
			entry: MaintenanceNodeStatus{Availability: "active"},
		},
		"recorded, not yet written": {
			entry: MaintenanceNodeStatus{PreviousAvailability: "active", Availability: "active"},
			held:  true, writePending: true, usesSlot: true,
		},
		"drained by the operator": {
			entry: MaintenanceNodeStatus{PreviousAvailability: "active", Availability: "drain", DrainedAt: &at},
			held:  true, usesSlot: true,
		},
		"a worker already out before the window takes no slot": {
			entry: MaintenanceNodeStatus{Role: "worker", PreviousAvailability: "drain", Availability: "drain", DrainedAt: &at},
			held:  true,
		},
		"a manager already out before the window still takes a slot": {
			entry: MaintenanceNodeStatus{Role: "manager", PreviousAvailability: "drain", Availability: "drain", DrainedAt: &at},
			held:  true, usesSlot: true,
		},
		"restored": {
			entry: MaintenanceNodeStatus{PreviousAvailability: "active", Availability: "active", DrainedAt: &at, RestoredAt: &at},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := tc.entry
			if e.Held() != tc.held || e.WritePending() != tc.writePending || e.UsesSlot() != tc.usesSlot {
				t.Errorf("Held %v WritePending %v UsesSlot %v, want %v %v %v",
					e.Held(), e.WritePending(), e.UsesSlot(), tc.held, tc.writePending, tc.usesSlot)
			}
		})
	}
}

func TestFirstDrainedAtIsTheEarliestDrainOfANodeStillHeld(t *testing.T) {
	t1, t2, t3 := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	ts := func(t time.Time) *metav1.Time { v := metav1.NewTime(t); return &v }
	m := &SwarmNodeMaintenance{}
	if got := m.FirstDrainedAt(); !got.IsZero() {
		t.Fatalf("no node held: FirstDrainedAt %s, want zero", got)
	}
	m.Status.Nodes = []MaintenanceNodeStatus{
		{Name: "restored", PreviousAvailability: "active", DrainedAt: ts(t1), RestoredAt: ts(t3)},
		{Name: "later", PreviousAvailability: "active", DrainedAt: ts(t3)},
		{Name: "pending", PreviousAvailability: "active"},
		{Name: "first", PreviousAvailability: "active", DrainedAt: ts(t2)},
	}
	if got := m.FirstDrainedAt(); !got.Equal(t2) {
		t.Fatalf("FirstDrainedAt %s, want %s (a restored node no longer counts)", got, t2)
	}
}
