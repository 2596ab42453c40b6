package swarmstack

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/security"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

// The security levels in the stack pass: enforce stops a new revision before anything is
// written, warn and audit report, and what runs keeps running.

const withSysAdmin = `
services:
  api:
    image: numbers-api:v1
    cap_add: [SYS_ADMIN]
`

// labelNamespace sets the stack namespace's labels (creating it on first use).
func (e *stackEnv) labelNamespace(labels map[string]string) {
	e.t.Helper()
	ns := &corev1.Namespace{}
	err := e.c.Get(context.Background(), ktypes.NamespacedName{Name: stackNS}, ns)
	if err != nil {
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: stackNS, Labels: labels}}
		if err := e.c.Create(context.Background(), ns); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	ns.Labels = labels
	if err := e.c.Update(context.Background(), ns); err != nil {
		e.t.Fatal(err)
	}
}

func TestPolicyViolationWritesNothingAndNamesFileServiceFieldAndLevel(t *testing.T) {
	e := newStackEnv(t)
	e.labelNamespace(map[string]string{security.LabelEnforce: "baseline"})
	e.createStack("numbers", withSysAdmin)
	e.passes("numbers", 2)
	if n := e.writes(); n != 0 {
		t.Fatalf("%d writes to the Swarm for a stack the level forbids", n)
	}
	s := e.stack("numbers")
	r := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReady)
	want := `Security level baseline forbids: docker-compose.yml:5: service "api": cap_add: capability "SYS_ADMIN" is not in the baseline list`
	if r.Status != metav1.ConditionFalse || r.Reason != swarmv1.ReasonPolicyViolation || !strings.HasPrefix(r.Message, want) {
		t.Fatalf("Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
	if !meta.IsStatusConditionTrue(s.Status.Conditions, swarmv1.ConditionStalled) {
		t.Fatalf("a violation only an edit fixes is not Stalled: %v", s.Status.Conditions)
	}
	if evs := e.events(); !testenv.HasEvent(evs, swarmv1.ReasonPolicyViolation) || strings.Count(strings.Join(evs, "\n"), swarmv1.ReasonPolicyViolation) != 1 {
		t.Fatalf("want one PolicyViolation event over two passes, got %q", evs)
	}
}

// A running stack that a newly stricter level forbids runs on, reported, until its
// next revision; that one is refused and the running one stays.
func TestStricterLevelReportsTheRunningRevisionAndRefusesTheNext(t *testing.T) {
	e := newStackEnv(t)
	e.sw.AutoConverge = true
	e.createStack("numbers", withSysAdmin)
	e.passes("numbers", 3)
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("privileged (no label) did not deploy: %s %s", r.Reason, r.Message)
	}
	_ = e.events()
	writes := e.writes()

	e.labelNamespace(map[string]string{security.LabelEnforce: "baseline"})
	e.passes("numbers", 2)
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue || e.writes() != writes {
		t.Fatalf("the running revision was touched: Ready=%s %s: %s; %d writes", r.Status, r.Reason, r.Message, e.writes()-writes)
	}
	ws := strings.Join(e.stack("numbers").Status.Warnings, "\n")
	if !strings.Contains(ws, "The running revision is left as it is, but the next one must comply: Security level baseline forbids") {
		t.Fatalf("warnings %q", ws)
	}
	if evs := e.events(); !testenv.HasEvent(evs, swarmv1.EventPolicyWarning) {
		t.Fatalf("no PolicyWarning event: %q", evs)
	}

	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		v2 := strings.Replace(withSysAdmin, "numbers-api:v1", "numbers-api:v2", 1)
		s.Spec.Compose.Files[0].Inline = &v2
	})
	e.passes("numbers", 2)
	if r := e.ready("numbers"); r.Reason != swarmv1.ReasonPolicyViolation {
		t.Fatalf("the next revision was not refused: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
	if e.writes() != writes || e.image("numbers_api") != "numbers-api:v1" {
		t.Fatalf("the refused revision reached the Swarm: image %s, %d writes", e.image("numbers_api"), e.writes()-writes)
	}
}

// The strictest of namespace label, operator default and SwarmCluster level applies: a
// SwarmCluster can tighten, never loosen.
func TestStrictestLevelApplies(t *testing.T) {
	cases := map[string]struct {
		label, cluster string
		operator       security.Level
		refused        string // the level that refuses, "" when the stack deploys
	}{
		"nothing set deploys":                    {},
		"operator default refuses":               {operator: security.Baseline, refused: "baseline"},
		"cluster level refuses":                  {cluster: "restricted", refused: "restricted"},
		"cluster cannot loosen the namespace":    {label: "baseline", cluster: "privileged", refused: "baseline"},
		"namespace stricter than the default":    {label: "restricted", operator: security.Baseline, refused: "restricted"},
		"a label value that is no level refuses": {label: "none", refused: "restricted"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newStackEnv(t)
			e.tune = func(r *Reconciler) { r.Security.Level = tc.operator }
			if tc.label != "" {
				e.labelNamespace(map[string]string{security.LabelEnforce: tc.label})
			}
			var cluster swarmv1.SwarmCluster
			if err := e.c.Get(context.Background(), ktypes.NamespacedName{Namespace: stackNS, Name: "prod"}, &cluster); err != nil {
				t.Fatal(err)
			}
			cluster.Spec.SecurityLevel = tc.cluster
			if err := e.c.Update(context.Background(), &cluster); err != nil {
				t.Fatal(err)
			}
			e.createStack("numbers", withSysAdmin)
			e.passes("numbers", 2)
			r := e.ready("numbers")
			if tc.refused == "" {
				if r.Reason == swarmv1.ReasonPolicyViolation || e.writes() == 0 {
					t.Fatalf("not deployed: %s: %s", r.Reason, r.Message)
				}
				return
			}
			if tc.label == "none" && !strings.HasSuffix(r.Message, `; namespace label swarm.swarmops.io/enforce: unknown security level "none": use one of privileged, baseline, restricted; taken as restricted`) {
				t.Errorf("the message does not say why the level is restricted: %s", r.Message)
			}
			if r.Reason != swarmv1.ReasonPolicyViolation || !strings.HasPrefix(r.Message, "Security level "+tc.refused+" forbids") || e.writes() != 0 {
				t.Fatalf("want refused at %s with nothing written, got %s: %s (%d writes)", tc.refused, r.Reason, r.Message, e.writes())
			}
		})
	}
}

func TestWarnDeploysAndReportsInStatusAndEvent(t *testing.T) {
	e := newStackEnv(t)
	e.labelNamespace(map[string]string{security.LabelWarn: "baseline"})
	e.createStack("numbers", withSysAdmin)
	e.passes("numbers", 2)
	if e.writes() == 0 {
		t.Fatal("warn stopped the stack")
	}
	ws := strings.Join(e.stack("numbers").Status.Warnings, "\n")
	if !strings.Contains(ws, `Security level baseline forbids: docker-compose.yml:5: service "api": cap_add`) {
		t.Fatalf("warnings %q", ws)
	}
	if evs := e.events(); !testenv.HasEvent(evs, swarmv1.EventPolicyWarning) {
		t.Fatalf("no PolicyWarning event: %q", evs)
	}
}

func TestAuditDeploysAndReportsInEventAndMetricOnly(t *testing.T) {
	e := newStackEnv(t)
	e.labelNamespace(map[string]string{security.LabelAudit: "restricted"})
	e.createStack("numbers", withSysAdmin)
	e.passes("numbers", 2)
	if e.writes() == 0 {
		t.Fatal("audit stopped the stack")
	}
	if ws := e.stack("numbers").Status.Warnings; len(ws) != 0 {
		t.Fatalf("audit wrote warnings %q", ws)
	}
	evs := e.events()
	if !testenv.HasEvent(evs, swarmv1.EventPolicyAudit) || strings.Count(strings.Join(evs, "\n"), swarmv1.EventPolicyAudit) != 1 {
		t.Fatalf("want one PolicyAudit event for the new revision, got %q", evs)
	}
	// cap_add SYS_ADMIN, no user, no cap_drop ALL, writable root.
	if got := testutil.ToFloat64(metrics.StackPolicyViolations.WithLabelValues(stackNS, "numbers", "audit", "restricted")); got != 4 {
		t.Fatalf("audit metric %v, want 4", got)
	}
}

// TestPolicyMetricKeepsOneSeriesPerMode: when a mode's level changes, the series of the
// level before goes; the other stacks' series stay.
func TestPolicyMetricKeepsOneSeriesPerMode(t *testing.T) {
	e := newStackEnv(t)
	e.labelNamespace(map[string]string{security.LabelAudit: "restricted"})
	e.createStack("numbers", withSysAdmin)
	e.createStack("other", withSysAdmin)
	e.passes("numbers", 2)
	e.passes("other", 2)
	e.labelNamespace(map[string]string{security.LabelAudit: "baseline"})
	e.passes("numbers", 1)
	series := func(stack string) []string {
		ch := make(chan prometheus.Metric)
		go func() { metrics.StackPolicyViolations.Collect(ch); close(ch) }()
		var out []string
		for m := range ch {
			var d dto.Metric
			_ = m.Write(&d)
			labels := map[string]string{}
			for _, l := range d.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == stackNS && labels["stack"] == stack && labels["mode"] == "audit" {
				out = append(out, labels["level"])
			}
		}
		return out
	}
	if got := series("numbers"); !slices.Equal(got, []string{"baseline"}) {
		t.Fatalf("audit series of numbers after the change: %v, want baseline only", got)
	}
	if got := series("other"); !slices.Equal(got, []string{"restricted"}) {
		t.Fatalf("audit series of other: %v, want restricted", got)
	}
}

// The operator's allowed host ports let a baseline stack publish in host mode, as the
// demo's web service does.
func TestBaselineWithAllowedHostPortDeploys(t *testing.T) {
	e := newStackEnv(t)
	e.tune = func(r *Reconciler) {
		r.Security = security.Policy{Level: security.Baseline, AllowedHostPorts: []uint32{80}}
	}
	e.createStack("numbers", "services:\n  web:\n    image: numbers-web:v1\n    ports: [{target: 80, published: 80, mode: host}]\n")
	e.passes("numbers", 2)
	if r := e.ready("numbers"); r.Reason == swarmv1.ReasonPolicyViolation || e.writes() == 0 {
		t.Fatalf("refused: %s", r.Message)
	}
}

// A change of a namespace's security labels wakes its stacks; other label changes do not.
func TestNamespaceSecurityLabelChangeWakesItsStacks(t *testing.T) {
	e := newStackEnv(t)
	e.createStack("numbers", twoServices)
	e.createStack("other", twoServices)
	ns := func(labels map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: stackNS, Labels: labels}}
	}
	if securityLabelsChanged.Update(event.UpdateEvent{ObjectOld: ns(map[string]string{"team": "a"}), ObjectNew: ns(map[string]string{"team": "b"})}) {
		t.Fatal("an unrelated label change passed")
	}
	if !securityLabelsChanged.Update(event.UpdateEvent{ObjectOld: ns(nil), ObjectNew: ns(map[string]string{security.LabelWarn: "baseline"})}) {
		t.Fatal("a security label change did not pass")
	}
	if got := e.reconciler().stacksInNamespace(context.Background(), ns(nil)); len(got) != 2 {
		t.Fatalf("woke %v, want both stacks", got)
	}
}
