package swarmnodemaintenance

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

func TestMaintenanceInABlackoutSaysItsWindowDoesNotHappen(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1")
	start := w.env.Clock.Now().Add(time.Hour)
	s := metav1.NewTime(start)
	blackout := metav1.NewTime(start.Add(-time.Minute))
	m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: &swarmv1.MaintenanceWindow{
		Start: &s, Duration: metav1.Duration{Duration: time.Hour},
		Exclude: []swarmv1.TimeWindow{{Start: &blackout, Duration: metav1.Duration{Duration: time.Hour}}},
	}})
	w.runFor(3 * time.Hour)
	got := w.get(m)
	c := meta.FindStatusCondition(got.Status.Conditions, swarmv1.ConditionInWindow)
	if w.availability("w1") != avActive || c == nil || !strings.Contains(c.Message, "falls inside window.exclude") {
		t.Fatalf("w1 %s, InWindow %+v", w.availability("w1"), c)
	}
}
