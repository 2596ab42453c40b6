package controllers_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
)

// stackReconciles is how many reconciles the SwarmStack controller finished.
func stackReconciles(t *testing.T) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "swarmstack" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// stackStatusPatches is how many PATCH requests of a SwarmStack's status the API server
// served, from its own request counter: a patch that changes nothing still counts there
// (the object's resourceVersion then stays), and nothing else patches that subresource.
func stackStatusPatches(t *testing.T) float64 {
	t.Helper()
	cs, err := kubernetes.NewForConfig(bed.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels, value, ok := strings.Cut(line[len("apiserver_request_total{"):], "} ")
		if !ok || !strings.Contains(labels, `resource="swarmstacks"`) || !strings.Contains(labels, `subresource="status"`) || !strings.Contains(labels, `verb="PATCH"`) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		n += v
	}
	return n
}

// resyncAfterRestart restarts the operator and waits for a pass of a stack that
// skipped the render, and for the controller to finish it.
func resyncAfterRestart(t *testing.T) {
	t.Helper()
	skipped := testutil.ToFloat64(metrics.StackRenders.WithLabelValues("skipped"))
	restartOperator()
	done := stackReconciles(t)
	eventually(t, 2*time.Minute, "a resync pass that skipped the render", func() string {
		if n := testutil.ToFloat64(metrics.StackRenders.WithLabelValues("skipped")); n <= skipped {
			return "no pass skipped the render yet"
		}
		if stackReconciles(t) <= done {
			return "no reconcile finished yet"
		}
		return ""
	})
}

// TestResyncOfASettledStackWritesNothing: a real Swarm's update times have nanoseconds,
// which the API server's status drops; after a release completed, the resync of a new
// operator (render cache empty) neither renders the stack nor writes it.
func TestResyncOfASettledStackWritesNothing(t *testing.T) {
	ctx := context.Background()
	ns, cluster := newNamespace(t, "steady")
	cm := numbersConfigMap(t, ns)
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version: "v1",
				Compose: swarmv1.ComposeSource{Files: composeFiles(cm.Name, "docker-compose.yml")},
			},
		},
	}
	if err := bed.Client.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, stack) })
	waitOutcome(t, stack, "v1", swarmv1.OutcomeCompleted, 2*time.Minute)
	setRelease(t, stack, "v2", composeFiles(cm.Name, "docker-compose.yml", "v2.yml"))
	waitOutcome(t, stack, "v2", swarmv1.OutcomeCompleted, 3*time.Minute)
	eventually(t, 2*time.Minute, "every service settled in status", func() string {
		get(t, stack)
		for _, svc := range stack.Status.Services {
			if svc.RunningTasks != svc.DesiredTasks || svc.ShuttingDownTasks > 0 {
				return fmt.Sprintf("%s: %d of %d running, %d shutting down", svc.Name, svc.RunningTasks, svc.DesiredTasks, svc.ShuttingDownTasks)
			}
		}
		return ""
	})
	updated := false
	for _, svc := range stack.Status.Services {
		updated = updated || svc.UpdateStartedAt != nil
	}
	if !updated {
		t.Fatalf("no service has an update time, the test would not cover it: %+v", stack.Status.Services)
	}
	// The first resync takes what the operator had not written yet; the second one finds
	// nothing to write.
	resyncAfterRestart(t)
	get(t, stack)
	settled, patches := stack.ResourceVersion, stackStatusPatches(t)
	resyncAfterRestart(t)
	get(t, stack)
	if n := stackStatusPatches(t) - patches; n != 0 || stack.ResourceVersion != settled {
		t.Fatalf("the resync of a settled stack patched its status %v times (resourceVersion %s, then %s)", n, settled, stack.ResourceVersion)
	}
	if patches == 0 {
		t.Fatal("the API server counted no status patch of a SwarmStack at all: the counter read is not the right one")
	}
	if r := readyCondition(t, stack); r.Status != metav1.ConditionTrue {
		t.Fatalf("after the resync: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}
