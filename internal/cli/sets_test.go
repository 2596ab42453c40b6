package cli

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

const setRevision = "sha256:0123456789abcdef0123"

func newSet(name string) *swarmv1.SwarmStackSet {
	s := &swarmv1.SwarmStackSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour)), UID: ktypes.UID("uid-" + name)}}
	s.Spec.Strategy = swarmv1.StackSetStrategy{Type: swarmv1.StrategyProgressive, Steps: []swarmv1.StackSetStep{{Name: "canary"}, {Name: "prod", Approval: swarmv1.ApprovalManual}}}
	s.Status = swarmv1.SwarmStackSetStatus{
		Revision: setRevision, ClustersSummary: "1/3", CurrentStep: "prod",
		Conditions: []metav1.Condition{cond(swarmv1.ConditionReady, metav1.ConditionFalse, swarmv1.ReasonAwaitingApproval, "Step prod of revision 0123456789ab waits for approval", 1)},
		Steps: []swarmv1.StackSetStepStatus{
			{Name: "canary", Phase: swarmv1.StepCompleted, Clusters: 1, Updated: 1},
			{Name: "prod", Phase: swarmv1.StepAwaitingApproval, Clusters: 2},
		},
		Clusters: []swarmv1.StackSetClusterStatus{
			{Name: "canary-1", Stack: name + "-canary-1", Step: "canary", Revision: setRevision, Outcome: swarmv1.OutcomeCompleted, Ready: true},
			{Name: "prod-1", Stack: name + "-prod-1", Step: "prod", Outcome: "Pending"},
		},
		Unmatched: []string{"lab-1"},
		History:   []swarmv1.StackSetHistoryEntry{{Revision: setRevision, Version: "v5", StartedAt: metav1.NewTime(t0.Add(-30 * time.Minute)), Outcome: swarmv1.OutcomeProgressing}},
	}
	return s
}

func TestGetSetsPrintsTheCRDColumnsAndOneSetItsStepsClustersAndHistory(t *testing.T) {
	w := newWorld(t, nil, newSet("numbers"))
	code, out, _ := w.run("get", "sets")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME CLUSTERS STEP REVISION READY STATUS AGE" {
		t.Fatalf("exit %d, table:\n%s", code, out)
	}
	if f := strings.Fields(lines[1]); f[0] != "numbers" || f[1] != "1/3" || f[2] != "prod" || f[3] != "0123456789ab" || f[4] != "False" {
		t.Fatalf("row %q", lines[1])
	}
	code, out, _ = w.run("get", "set", "numbers")
	for _, want := range []string{"AwaitingApproval", "numbers-canary-1", "lab-1", "Unmatched", "v5", "Progressing"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("exit %d, no %q in:\n%s", code, want, out)
		}
	}
}

func TestApproveWritesTheStepAndRevisionAndIsConfirmed(t *testing.T) {
	set := newSet("numbers")
	set.Status.LastHandledApprove = "prod@0123456789ab" // the operator handled it
	w := newWorld(t, nil, set)
	code, out, errOut := w.run("approve", "numbers", "prod")
	if code != 0 || !strings.Contains(out, "Approval handled by the operator") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var got swarmv1.SwarmStackSet
	if err := w.c.Get(t.Context(), ktypes.NamespacedName{Namespace: ns, Name: "numbers"}, &got); err != nil {
		t.Fatal(err)
	}
	if v := got.Annotations[swarmv1.AnnotationApprove]; v != "prod@0123456789ab" {
		t.Fatalf("annotation %q", v)
	}
}

func TestApproveRefusesAStepTheSetDoesNotHave(t *testing.T) {
	w := newWorld(t, nil, newSet("numbers"))
	code, _, errOut := w.run("approve", "numbers", "staging")
	if code != ExitError || !strings.Contains(errOut, `no step "staging"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestApproveNotHandledTimesOut(t *testing.T) {
	w := newWorld(t, nil, newSet("numbers"))
	code, _, errOut := w.run("approve", "numbers", "prod", "--timeout", "50ms")
	if code != ExitTimeout || !strings.Contains(errOut, "did not handle the approval") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
