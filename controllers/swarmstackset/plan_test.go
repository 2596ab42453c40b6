package swarmstackset

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)

// progressive is the set of the issue: canary (1 at once, soak 10m), then prod (50%,
// Manual approval); clusters with env lab are matched by no step.
func progressive(version string) *swarmv1.SwarmStackSetSpec {
	one, half := intstr.FromInt32(1), intstr.FromString("50%")
	spec := &swarmv1.SwarmStackSetSpec{
		ClusterSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "numbers"}},
		Strategy: swarmv1.StackSetStrategy{
			Type: swarmv1.StrategyProgressive,
			Steps: []swarmv1.StackSetStep{
				{Name: "canary", ClusterSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "canary"}}, MaxConcurrent: &one, Soak: &metav1.Duration{Duration: 10 * time.Minute}},
				{Name: "prod", ClusterSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}, MaxConcurrent: &half, Approval: swarmv1.ApprovalManual},
			},
			OnFailure: swarmv1.OnFailureHalt,
		},
	}
	spec.Template.Spec.Version = version
	return spec
}

func clusters(names ...string) []Cluster {
	var out []Cluster
	for _, n := range names {
		env, _, _ := strings.Cut(n, "-")
		out = append(out, Cluster{Name: n, Labels: map[string]string{"app": "numbers", "env": env}})
	}
	return out
}

var (
	v4    = progressive("v4")
	v5    = progressive("v5")
	rev4  = Revision(&v4.Template)
	rev5  = Revision(&v5.Template)
	fleet = clusters("canary-1", "prod-1", "prod-2", "lab-1")
	ready = func(rev string, since time.Time) Observed {
		return Observed{Revision: rev, Current: true, Ready: true, ReadySince: since}
	}
	rolling = Observed{Revision: rev5, Current: true, Message: "Rolling out"}
	failedO = Observed{Revision: rev5, Current: true, Failed: swarmv1.OutcomeRolledBack, Message: "api: update rolled back"}
)

// released is the status of a set whose release of v4 completed everywhere, now on v5
// with the canary written at written.
func released(written time.Time) swarmv1.SwarmStackSetStatus {
	w := metav1.NewTime(written)
	return swarmv1.SwarmStackSetStatus{
		Revision: rev5, LastCompletedRevision: rev4, LastCompletedTemplate: v4.Template.DeepCopy(),
		Clusters:  []swarmv1.StackSetClusterStatus{{Name: "canary-1", Revision: rev5, WrittenAt: &w}},
		Unmatched: []string{"lab-1"},
		History:   []swarmv1.StackSetHistoryEntry{{Revision: rev5, Outcome: swarmv1.OutcomeProgressing}},
	}
}

// onV4 is stacks, the prod clusters on the completed v4 release unless stacks says else.
func onV4(stacks map[string]Observed) map[string]Observed {
	out := map[string]Observed{"prod-1": ready(rev4, t0), "prod-2": ready(rev4, t0)}
	for k, v := range stacks {
		out[k] = v
	}
	return out
}

func phases(st swarmv1.SwarmStackSetStatus) string {
	var out []string
	for _, s := range st.Steps {
		out = append(out, s.Name+"="+s.Phase)
	}
	return strings.Join(out, " ")
}

func writes(p Plan) string {
	var out []string
	for _, w := range p.Writes {
		v := "?"
		switch w.Revision {
		case rev4:
			v = "v4"
		case rev5:
			v = "v5"
		}
		if Revision(w.Template) != w.Revision {
			v += "(template does not match)"
		}
		if w.Suspend {
			v += "(suspended)"
		}
		out = append(out, w.Cluster+":"+v)
	}
	return strings.Join(out, " ")
}

// haltedV5 is released(t0) after the halt of v5.
func haltedV5() swarmv1.SwarmStackSetStatus {
	st := released(t0)
	st.Halted = true
	return st
}

func TestMake(t *testing.T) {
	withSpec := func(s *swarmv1.SwarmStackSetSpec, change func(*swarmv1.SwarmStackSetSpec)) *swarmv1.SwarmStackSetSpec {
		s = s.DeepCopy()
		change(s)
		return s
	}
	cases := map[string]struct {
		in          Input
		writes      string
		phases      string
		ready       metav1.ConditionStatus
		reason      string
		halted      bool
		requeue     time.Duration
		events      []string
		unmatched   []string
		clusterWant map[string]string // cluster -> outcome
	}{
		"first release writes the canary only and reports the cluster no step selects": {
			in:     Input{Spec: v5, Clusters: fleet},
			writes: "canary-1:v5", phases: "canary=Progressing prod=Pending",
			ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseProgressing, requeue: 30 * time.Minute,
			events: []string{swarmv1.EventReleaseStarted, swarmv1.EventClusterUnmatched, swarmv1.EventStepStarted}, unmatched: []string{"lab-1"},
			clusterWant: map[string]string{"canary-1": "Progressing", "prod-1": "Pending"},
		},
		"a failed canary halts the release and prod never receives it": {
			in:     Input{Spec: v5, Clusters: fleet, Status: released(t0), Stacks: map[string]Observed{"canary-1": failedO, "prod-1": ready(rev4, t0), "prod-2": ready(rev4, t0)}},
			writes: "", phases: "canary=Halted prod=Halted", halted: true,
			ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseHalted, events: []string{swarmv1.EventReleaseHalted},
			clusterWant: map[string]string{"canary-1": swarmv1.OutcomeRolledBack, "prod-1": swarmv1.OutcomeCompleted},
		},
		"RollbackAll writes the last completed template back to the clusters on the failed revision": {
			in: Input{Spec: withSpec(v5, func(s *swarmv1.SwarmStackSetSpec) { s.Strategy.OnFailure = swarmv1.OnFailureRollbackAll }),
				Clusters: fleet, Status: released(t0), Stacks: map[string]Observed{"canary-1": failedO, "prod-1": ready(rev4, t0), "prod-2": ready(rev4, t0)}},
			writes: "canary-1:v4", phases: "canary=Halted prod=Halted", halted: true,
			ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseHalted, events: []string{swarmv1.EventReleaseHalted, swarmv1.EventRollbackAll},
		},
		"a halted release stays halted and writes nothing when the canary recovers": {
			in: Input{Spec: v5, Clusters: fleet, Status: func() swarmv1.SwarmStackSetStatus { s := released(t0); s.Halted = true; return s }(),
				Stacks: map[string]Observed{"canary-1": ready(rev5, t0)}},
			writes: "", phases: "canary=Completed prod=Halted", halted: true, ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseHalted,
		},
		"failures within maxFailures let the release go on": {
			in: Input{Spec: withSpec(v5, func(s *swarmv1.SwarmStackSetSpec) { s.Strategy.MaxFailures = 1; s.Strategy.Steps[0].Soak = nil }),
				Clusters: fleet, Status: released(t0), Approve: "prod", Stacks: map[string]Observed{"canary-1": failedO}},
			writes: "prod-1:v5", phases: "canary=Completed prod=Progressing", ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseProgressing, requeue: 30 * time.Minute,
			events: []string{swarmv1.EventStepApproved, swarmv1.EventStepStarted},
		},
		"a Ready canary soaks before the next step": {
			in:     Input{Spec: v5, Clusters: fleet, Now: t0.Add(5 * time.Minute), Status: released(t0), Stacks: map[string]Observed{"canary-1": ready(rev5, t0)}},
			writes: "", phases: "canary=Soaking prod=Pending", requeue: 5 * time.Minute, ready: metav1.ConditionFalse, reason: swarmv1.ReasonSoaking,
		},
		"the soak runs from when the stack became Ready, not from the write": {
			in:     Input{Spec: v5, Clusters: fleet, Now: t0.Add(12 * time.Minute), Status: released(t0), Stacks: map[string]Observed{"canary-1": ready(rev5, t0.Add(3*time.Minute))}},
			writes: "", phases: "canary=Soaking prod=Pending", requeue: time.Minute, ready: metav1.ConditionFalse, reason: swarmv1.ReasonSoaking,
		},
		"a soaked canary leaves the Manual step waiting for approval": {
			in:     Input{Spec: v5, Clusters: fleet, Now: t0.Add(11 * time.Minute), Status: released(t0), Stacks: map[string]Observed{"canary-1": ready(rev5, t0)}},
			writes: "", phases: "canary=Completed prod=AwaitingApproval", ready: metav1.ConditionFalse, reason: swarmv1.ReasonAwaitingApproval,
		},
		"approval starts the step with maxConcurrent clusters": {
			in: Input{Spec: v5, Clusters: fleet, Now: t0.Add(11 * time.Minute), Status: released(t0), Approve: "prod@" + rev5,
				Stacks: map[string]Observed{"canary-1": ready(rev5, t0), "prod-1": ready(rev4, t0), "prod-2": ready(rev4, t0)}},
			writes: "prod-1:v5", phases: "canary=Completed prod=Progressing", ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseProgressing, requeue: 30 * time.Minute,
			events: []string{swarmv1.EventStepApproved, swarmv1.EventStepStarted},
		},
		"an approve value already handled approves nothing": {
			in: Input{Spec: v5, Clusters: fleet, Now: t0.Add(11 * time.Minute), Approve: "prod",
				Status: func() swarmv1.SwarmStackSetStatus { s := released(t0); s.LastHandledApprove = "prod"; return s }(),
				Stacks: map[string]Observed{"canary-1": ready(rev5, t0)}},
			writes: "", phases: "canary=Completed prod=AwaitingApproval", ready: metav1.ConditionFalse, reason: swarmv1.ReasonAwaitingApproval,
		},
		"maxConcurrent counts the clusters still rolling": {
			in: Input{Spec: v5, Clusters: fleet, Now: t0.Add(20 * time.Minute),
				Status: func() swarmv1.SwarmStackSetStatus {
					s := released(t0)
					s.Steps = []swarmv1.StackSetStepStatus{{Name: "prod", Approved: true}}
					return s
				}(),
				Stacks: map[string]Observed{"canary-1": ready(rev5, t0), "prod-1": rolling}},
			writes: "", phases: "canary=Completed prod=Progressing", ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseProgressing, requeue: 30 * time.Minute,
		},
		"a cluster not Ready past the progress deadline fails the release; its stack is suspended": {
			in:     Input{Spec: v5, Clusters: fleet, Now: t0.Add(30 * time.Minute), Status: released(t0), Stacks: map[string]Observed{"canary-1": rolling}},
			writes: "canary-1:v5(suspended)", phases: "canary=Halted prod=Halted", halted: true, ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseHalted,
			events: []string{swarmv1.EventReleaseHalted, swarmv1.EventStackSuspended}, clusterWant: map[string]string{"canary-1": swarmv1.OutcomeDeadlineExceeded},
		},
		"a halted release suspends a stack once": {
			in: Input{Spec: v5, Clusters: fleet, Now: t0.Add(31 * time.Minute), Status: haltedV5(),
				Stacks: map[string]Observed{"canary-1": {Revision: rev5, Current: true, Suspended: true, Message: "Rolling out"}}},
			writes: "", phases: "canary=Halted prod=Halted", halted: true, ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseHalted,
			events: []string{}, clusterWant: map[string]string{"canary-1": swarmv1.OutcomeDeadlineExceeded},
		},
		"RollbackAll writes the release in force, not a suspension": {
			in: Input{Spec: withSpec(v5, func(s *swarmv1.SwarmStackSetSpec) { s.Strategy.OnFailure = swarmv1.OnFailureRollbackAll }), Clusters: fleet,
				Now: t0.Add(30 * time.Minute), Status: released(t0), Stacks: map[string]Observed{"canary-1": rolling}},
			writes: "canary-1:v4", phases: "canary=Halted prod=Halted", halted: true, ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseHalted,
		},
		"before the progress deadline the pass comes back when it ends": {
			in:     Input{Spec: v5, Clusters: fleet, Now: t0.Add(20 * time.Minute), Status: released(t0), Stacks: map[string]Observed{"canary-1": rolling}},
			writes: "", phases: "canary=Progressing prod=Pending", requeue: 10 * time.Minute, ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseProgressing,
		},
		"a cluster joining during a release gets the release in force": {
			in: Input{Spec: v5, Clusters: clusters("canary-1", "prod-1", "prod-2", "prod-3"), Now: t0.Add(time.Minute), Status: released(t0),
				Stacks: map[string]Observed{"canary-1": rolling, "prod-1": ready(rev4, t0), "prod-2": ready(rev4, t0)}},
			writes: "prod-3:v4", phases: "canary=Progressing prod=Pending", requeue: 29 * time.Minute, ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseProgressing,
		},
		"a cluster joining after the release gets the revision and the rest stays": {
			in: Input{Spec: v5, Clusters: clusters("canary-1", "prod-1", "prod-2", "prod-3"), Now: t0.Add(time.Hour),
				Status: func() swarmv1.SwarmStackSetStatus {
					s := released(t0)
					s.LastCompletedRevision, s.LastCompletedTemplate = rev5, v5.Template.DeepCopy()
					return s
				}(),
				Stacks: map[string]Observed{"canary-1": ready(rev5, t0), "prod-1": ready(rev5, t0), "prod-2": ready(rev5, t0)}},
			writes: "prod-3:v5", phases: "canary=Completed prod=Progressing", ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseProgressing,
		},
		"every step done completes the release": {
			in: Input{Spec: v5, Clusters: fleet[:3], Now: t0.Add(time.Hour), Status: released(t0),
				Stacks: map[string]Observed{"canary-1": ready(rev5, t0), "prod-1": ready(rev5, t0), "prod-2": ready(rev5, t0)}},
			writes: "", phases: "canary=Completed prod=Completed", ready: metav1.ConditionTrue, reason: swarmv1.ReasonReleaseCompleted,
			events: []string{swarmv1.EventReleaseCompleted},
		},
		"AllAtOnce writes every selected cluster in one step": {
			in:     Input{Spec: withSpec(v5, func(s *swarmv1.SwarmStackSetSpec) { s.Strategy = swarmv1.StackSetStrategy{} }), Clusters: fleet},
			writes: "canary-1:v5 lab-1:v5 prod-1:v5 prod-2:v5", phases: "all=Progressing", requeue: 30 * time.Minute,
			ready: metav1.ConditionFalse, reason: swarmv1.ReasonReleaseProgressing, events: []string{swarmv1.EventReleaseStarted, swarmv1.EventStepStarted},
		},
		"suspend writes nothing": {
			in:     Input{Spec: withSpec(v5, func(s *swarmv1.SwarmStackSetSpec) { s.Suspend = true }), Clusters: fleet[:3]},
			writes: "", phases: "canary=Progressing prod=Pending", ready: metav1.ConditionFalse, reason: swarmv1.ReasonSuspended,
			events: []string{swarmv1.EventReleaseStarted},
		},
		"a step selector that cannot be read stalls the set and writes nothing": {
			in: Input{Spec: withSpec(v5, func(s *swarmv1.SwarmStackSetSpec) {
				s.Strategy.Steps[1].ClusterSelector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Near"}}
			}), Clusters: fleet},
			writes: "", ready: metav1.ConditionFalse, reason: swarmv1.ReasonInvalidStrategy,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.in.Name = "numbers"
			if tc.in.Stacks != nil {
				tc.in.Stacks = onV4(tc.in.Stacks)
			}
			if tc.in.Now.IsZero() {
				tc.in.Now = t0
			}
			p := Make(tc.in)
			if got := writes(p); got != tc.writes {
				t.Errorf("writes %q, want %q", got, tc.writes)
			}
			if got := phases(p.Status); got != tc.phases {
				t.Errorf("phases %q, want %q", got, tc.phases)
			}
			c := meta.FindStatusCondition(p.Status.Conditions, swarmv1.ConditionReady)
			if c == nil || c.Status != tc.ready || c.Reason != tc.reason {
				t.Errorf("Ready %+v, want %s %s", c, tc.ready, tc.reason)
			}
			if p.Status.Halted != tc.halted {
				t.Errorf("halted %v, want %v", p.Status.Halted, tc.halted)
			}
			if p.RequeueAfter != tc.requeue {
				t.Errorf("requeue after %s, want %s", p.RequeueAfter, tc.requeue)
			}
			var reasons []string
			for _, e := range p.Events {
				reasons = append(reasons, e.Reason)
			}
			if tc.events != nil && !slices.Equal(reasons, tc.events) {
				t.Errorf("events %v, want %v", p.Events, tc.events)
			}
			if tc.unmatched != nil && !slices.Equal(p.Status.Unmatched, tc.unmatched) {
				t.Errorf("unmatched %v, want %v", p.Status.Unmatched, tc.unmatched)
			}
			for cluster, outcome := range tc.clusterWant {
				i := slices.IndexFunc(p.Status.Clusters, func(c swarmv1.StackSetClusterStatus) bool { return c.Name == cluster })
				if i < 0 || p.Status.Clusters[i].Outcome != outcome {
					t.Errorf("cluster %s: %+v, want outcome %s", cluster, p.Status.Clusters, outcome)
				}
			}
		})
	}
}

func TestUnmatchedClusterIsAWarningCondition(t *testing.T) {
	p := Make(Input{Name: "numbers", Spec: v5, Clusters: fleet, Now: t0})
	c := meta.FindStatusCondition(p.Status.Conditions, swarmv1.ConditionUnmatched)
	if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "lab-1") {
		t.Fatalf("Unmatched condition %+v", c)
	}
	if p.Status.ClustersSummary != "0/4" || p.Status.CurrentStep != "canary" {
		t.Fatalf("columns %q %q", p.Status.ClustersSummary, p.Status.CurrentStep)
	}
	// Reported once: the next pass knows it already.
	again := Make(Input{Name: "numbers", Spec: v5, Clusters: fleet, Now: t0, Status: p.Status, Stacks: map[string]Observed{"canary-1": rolling}})
	for _, e := range again.Events {
		if e.Reason == swarmv1.EventClusterUnmatched {
			t.Fatalf("unmatched reported again: %+v", again.Events)
		}
	}
}

func TestNewTemplateSupersedesTheReleaseInProgress(t *testing.T) {
	p := Make(Input{Name: "numbers", Spec: progressive("v6"), Clusters: fleet, Now: t0, Status: released(t0), Stacks: onV4(map[string]Observed{"canary-1": rolling})})
	h := p.Status.History
	if len(h) != 2 || h[0].Version != "v6" || h[0].Outcome != swarmv1.OutcomeProgressing || h[1].Outcome != releaseSuperseded {
		t.Fatalf("history %+v", h)
	}
	if writes(p) != "canary-1:?" {
		t.Fatalf("writes %q", writes(p))
	}
}

func TestObserveStack(t *testing.T) {
	stackWith := func(gen, observed int64, conds ...metav1.Condition) *swarmv1.SwarmStack {
		s := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Generation: gen, Annotations: map[string]string{swarmv1.AnnotationSetRevision: rev5}}}
		s.Status.ObservedGeneration, s.Status.Conditions = observed, conds
		return s
	}
	readyC := metav1.Condition{Type: swarmv1.ConditionReady, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}
	rolledBack := metav1.Condition{Type: swarmv1.ConditionReady, Status: metav1.ConditionFalse, Reason: swarmv1.ReasonRolledBack, Message: "rolled back"}
	frozen := metav1.Condition{Type: swarmv1.ConditionReady, Status: metav1.ConditionFalse, Reason: swarmv1.ReasonFrozen}
	stalled := metav1.Condition{Type: swarmv1.ConditionStalled, Status: metav1.ConditionTrue, Reason: swarmv1.ReasonComposeInvalid}
	invalid := metav1.Condition{Type: swarmv1.ConditionReady, Status: metav1.ConditionFalse, Reason: swarmv1.ReasonComposeInvalid}
	cases := map[string]struct {
		s    *swarmv1.SwarmStack
		want Observed
	}{
		"a Ready of an older generation is not Ready": {stackWith(2, 1, readyC), Observed{Revision: rev5, Message: "waiting for the stack controller to see the new spec"}},
		"Ready at the current generation":             {stackWith(2, 2, readyC), Observed{Revision: rev5, Current: true, Ready: true, ReadySince: t0}},
		"a rolled back release failed":                {stackWith(2, 2, rolledBack), Observed{Revision: rev5, Current: true, Failed: swarmv1.ReasonRolledBack, Message: "rolled back"}},
		"a stalled stack failed":                      {stackWith(2, 2, invalid, stalled), Observed{Revision: rev5, Current: true, Failed: swarmv1.ReasonComposeInvalid}},
		"a stack waiting for a freeze is in progress": {stackWith(2, 2, frozen), Observed{Revision: rev5, Current: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := ObserveStack(tc.s); got != tc.want {
				t.Fatalf("%+v, want %+v", got, tc.want)
			}
		})
	}
}
