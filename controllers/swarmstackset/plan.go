package swarmstackset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/stack"
)

const (
	defaultProgressDeadline = 30 * time.Minute
	maxHistory              = 10
	// Outcomes of a cluster that the set decides itself, beside a SwarmStack's.
	outcomePending = "Pending"
	// outcomeHalted: the release halted before the cluster received it.
	outcomeHalted = "Halted"
	// Outcomes of a release in the set's history, beside Progressing and Completed.
	releaseHalted     = "Halted"
	releaseRolledBack = "RolledBack"
	releaseSuperseded = "Superseded"
)

// Cluster is one SwarmCluster the set's selector selects.
type Cluster struct {
	Name   string
	Labels map[string]string
}

// Observed is what the set reads of one generated SwarmStack.
type Observed struct {
	// Revision is the set revision the stack's spec was written from (its annotation).
	Revision string
	// Current: the stack controller has seen the stack's current generation.
	Current bool
	// Ready: Ready=True for the current generation; ReadySince is when it became so.
	Ready      bool
	ReadySince time.Time
	// Failed is the failed outcome of the current generation's release, "" when none.
	Failed  string
	Message string
	// Suspended: the stack's spec.suspend is set.
	Suspended bool
	// RolloutStartedAt is when the stack started the rollout it has in flight for its
	// current generation; zero when none.
	RolloutStartedAt time.Time
}

// ObserveStack reads a generated SwarmStack's status as the planner needs it.
func ObserveStack(s *swarmv1.SwarmStack) Observed {
	o := Observed{Revision: s.Annotations[swarmv1.AnnotationSetRevision], Suspended: s.Spec.Suspend}
	st := &s.Status
	o.Current = st.ObservedGeneration == s.Generation
	if r := st.RolloutInFlight(); r != nil && o.Current {
		o.RolloutStartedAt = r.StartedAt.Time
	}
	ready := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionReady)
	if ready == nil || !o.Current {
		o.Message = "waiting for the stack controller to see the new spec"
		return o
	}
	o.Message = ready.Message
	if ready.Status == metav1.ConditionTrue {
		o.Ready, o.ReadySince = true, ready.LastTransitionTime.Time
		return o
	}
	stalled := meta.IsStatusConditionTrue(st.Conditions, swarmv1.ConditionStalled)
	switch ready.Reason {
	case swarmv1.ReasonRolledBack, swarmv1.ReasonDeadlineExceeded, swarmv1.ReasonRolloutPaused,
		swarmv1.ReasonRollbackPaused, swarmv1.ReasonRollbackFailed:
		stalled = true
	}
	if !stalled {
		return o
	}
	o.Failed = ready.Reason
	if last := stack.LastOutcome(st.History); stack.FailedOutcome(last.Outcome) {
		o.Failed = last.Outcome
	}
	return o
}

// Input is everything a plan is made from: no reads, no clock.
type Input struct {
	// Name of the set: generated stacks are named <name>-<cluster>.
	Name       string
	Generation int64
	Spec       *swarmv1.SwarmStackSetSpec
	// Status is the set's status as the last pass left it.
	Status swarmv1.SwarmStackSetStatus
	// Approve is the value of the approve annotation.
	Approve string
	// Clusters the set's selector selects, any order.
	Clusters []Cluster
	// Stacks observed, by cluster name; a cluster without a stack is absent.
	Stacks map[string]Observed
	Now    time.Time
}

// Write is one generated SwarmStack to create or update.
type Write struct {
	Cluster  string
	Revision string
	Template *swarmv1.SwarmStackTemplate
	// Suspend writes the stack suspended whatever the template says.
	Suspend bool
}

// Event is one event the pass should record.
type Event struct {
	Type, Reason, Message string
}

// Plan is what a pass does and reports.
type Plan struct {
	Writes []Write
	Status swarmv1.SwarmStackSetStatus
	Events []Event
	// RequeueAfter: when a soak or a progress deadline ends.
	RequeueAfter time.Duration
}

// Revision is the hash of a template: a new one is a new release.
func Revision(t *swarmv1.SwarmStackTemplate) string {
	b, _ := json.Marshal(t) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// step is one step of the strategy, resolved.
type step struct {
	name     string
	selector labels.Selector
	max      *intstr.IntOrString
	soak     time.Duration
	manual   bool
	clusters []string
	approved bool
	phase    string
	updated  int32
	soakedAt *metav1.Time
}

// steps resolves the strategy; AllAtOnce is one step "all" over every cluster at once.
func steps(spec *swarmv1.SwarmStackSetSpec) ([]*step, error) {
	if spec.Strategy.Type != swarmv1.StrategyProgressive {
		all := intstr.FromString("100%")
		return []*step{{name: swarmv1.AllAtOnceStep, selector: labels.Everything(), max: &all}}, nil
	}
	if len(spec.Strategy.Steps) == 0 {
		return nil, fmt.Errorf("spec.strategy.steps: strategy Progressive needs at least one step")
	}
	var out []*step
	seen := map[string]bool{}
	for i, s := range spec.Strategy.Steps {
		if seen[s.Name] {
			return nil, fmt.Errorf("spec.strategy.steps[%d].name: %q is used by an earlier step", i, s.Name)
		}
		seen[s.Name] = true
		sel, err := metav1.LabelSelectorAsSelector(&s.ClusterSelector)
		if err != nil {
			return nil, fmt.Errorf("spec.strategy.steps[%d].clusterSelector: %w", i, err)
		}
		if s.MaxConcurrent != nil {
			if n, err := intstr.GetScaledValueFromIntOrPercent(s.MaxConcurrent, 100, true); err != nil || n < 1 {
				return nil, fmt.Errorf("spec.strategy.steps[%d].maxConcurrent: %q must be a number or a percentage of at least 1", i, s.MaxConcurrent.String())
			}
		}
		st := &step{name: s.Name, selector: sel, max: s.MaxConcurrent, manual: s.Approval == swarmv1.ApprovalManual}
		if s.Soak != nil {
			st.soak = s.Soak.Duration
		}
		out = append(out, st)
	}
	return out, nil
}

// limit is how many of the step's clusters may roll at once: at least 1.
func (s *step) limit() int {
	if s.max == nil {
		return 1
	}
	n, _ := intstr.GetScaledValueFromIntOrPercent(s.max, len(s.clusters), true) // validated by steps
	return max(n, 1)
}

// planner holds one planning's working state.
type planner struct {
	in       Input
	rev      string
	steps    []*step
	stepOf   map[string]*step
	clusters map[string]*swarmv1.StackSetClusterStatus
	plan     Plan
	halted   bool
	requeue  time.Time
}

// Make plans one pass of a set: which generated stacks to write with which template,
// the steps' phases, whether the release halts, and the status to report. It decides
// from its input alone, so the same facts always give the same plan.
func Make(in Input) Plan {
	p := &planner{in: in, rev: Revision(&in.Spec.Template), stepOf: map[string]*step{}, clusters: map[string]*swarmv1.StackSetClusterStatus{}}
	st := &p.plan.Status
	*st = *in.Status.DeepCopy()
	st.Revision, st.Unmatched = p.rev, nil
	var err error
	if p.steps, err = steps(in.Spec); err != nil {
		reconcile.MarkFailed(&st.Conditions, in.Generation, swarmv1.ReasonInvalidStrategy, err.Error(), true)
		return p.plan
	}
	p.startRelease()
	p.assign()
	p.approve()
	p.observe()
	p.halted = in.Status.Revision == p.rev && in.Status.Halted
	if !p.halted && st.LastCompletedRevision != p.rev && p.failures() > int(in.Spec.Strategy.MaxFailures) {
		p.halt()
	}
	if p.halted {
		p.holdHalted()
	} else {
		p.walk()
	}
	p.giveReleaseInForce()
	p.report()
	if !p.requeue.IsZero() {
		p.plan.RequeueAfter = max(p.requeue.Sub(in.Now), time.Second)
	}
	return p.plan
}

func (p *planner) event(typ, reason, format string, args ...any) {
	p.plan.Events = append(p.plan.Events, Event{Type: typ, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (p *planner) requeueAt(t time.Time) {
	if p.requeue.IsZero() || t.Before(p.requeue) {
		p.requeue = t
	}
}

// startRelease opens a release when the template changed: steps start over.
func (p *planner) startRelease() {
	st := &p.plan.Status
	if p.in.Status.Revision == p.rev {
		return
	}
	st.Halted, st.Steps = false, nil
	now := metav1.NewTime(p.in.Now)
	if len(st.History) > 0 && st.History[0].Outcome == swarmv1.OutcomeProgressing {
		st.History[0].Outcome, st.History[0].FinishedAt = releaseSuperseded, &now
	}
	st.History = append([]swarmv1.StackSetHistoryEntry{{
		Revision: p.rev, Version: p.in.Spec.Template.Spec.Version, StartedAt: now, Outcome: swarmv1.OutcomeProgressing,
	}}, st.History...)
	if len(st.History) > maxHistory {
		st.History = st.History[:maxHistory]
	}
	p.event(corev1.EventTypeNormal, swarmv1.EventReleaseStarted, "Release of revision %s%s started", stack.ShortRev(p.rev), stack.VersionSuffix(p.in.Spec.Template.Spec.Version))
}

// assign puts each cluster in the first step that selects it; the others are unmatched.
func (p *planner) assign() {
	cs := slices.Clone(p.in.Clusters)
	slices.SortFunc(cs, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range cs {
		i := slices.IndexFunc(p.steps, func(s *step) bool { return s.selector.Matches(labels.Set(c.Labels)) })
		if i < 0 {
			p.plan.Status.Unmatched = append(p.plan.Status.Unmatched, c.Name)
			continue
		}
		p.steps[i].clusters = append(p.steps[i].clusters, c.Name)
		p.stepOf[c.Name] = p.steps[i]
	}
	for _, name := range p.plan.Status.Unmatched {
		if !slices.Contains(p.in.Status.Unmatched, name) {
			p.event(corev1.EventTypeWarning, swarmv1.EventClusterUnmatched, "SwarmCluster %s is selected but no step selects it: it receives no release", name)
		}
	}
	if p.in.Status.Revision != p.rev {
		return // approvals are per release
	}
	for _, prev := range p.in.Status.Steps {
		for _, s := range p.steps {
			if s.name == prev.Name {
				s.approved = prev.Approved
			}
		}
	}
}

// approve handles a new value of the approve annotation: "<step>" or "<step>@<anything>".
func (p *planner) approve() {
	v := p.in.Approve
	if v == "" || v == p.in.Status.LastHandledApprove {
		return
	}
	p.plan.Status.LastHandledApprove = v
	name, _, _ := strings.Cut(v, "@")
	for _, s := range p.steps {
		if s.name == name {
			if !s.approved {
				s.approved = true
				p.event(corev1.EventTypeNormal, swarmv1.EventStepApproved, "Step %s of revision %s approved", name, stack.ShortRev(p.rev))
			}
			return
		}
	}
	p.event(corev1.EventTypeWarning, swarmv1.EventStepApproved, "Approval %q names no step of the set", v)
}

// observe fills each cluster's status from its stack.
func (p *planner) observe() {
	prev := map[string]swarmv1.StackSetClusterStatus{}
	for _, c := range p.in.Status.Clusters {
		prev[c.Name] = c
	}
	for _, c := range p.in.Clusters {
		o, exists := p.in.Stacks[c.Name]
		cs := &swarmv1.StackSetClusterStatus{Name: c.Name, Stack: p.stackName(c.Name), Outcome: outcomePending}
		if s := p.stepOf[c.Name]; s != nil {
			cs.Step = s.name
		}
		p.clusters[c.Name] = cs
		if !exists || o.Revision == "" {
			continue
		}
		cs.Revision, cs.Message, cs.Ready = o.Revision, o.Message, o.Ready
		if was, ok := prev[c.Name]; ok && was.Revision == o.Revision {
			cs.WrittenAt, cs.ReadyAt = was.WrittenAt, was.ReadyAt
		}
		if cs.WrittenAt == nil {
			// Written by a pass whose status was lost: count from now.
			cs.WrittenAt = &metav1.Time{Time: p.in.Now}
		}
		switch {
		case o.Ready:
			cs.Outcome = swarmv1.OutcomeCompleted
			if cs.ReadyAt == nil {
				at := o.ReadySince
				if at.Before(cs.WrittenAt.Time) {
					at = cs.WrittenAt.Time
				}
				cs.ReadyAt = &metav1.Time{Time: at}
			}
		case o.Failed != "":
			cs.Outcome, cs.ReadyAt = o.Failed, nil
		default:
			cs.Outcome, cs.ReadyAt = swarmv1.OutcomeProgressing, nil
			p.checkDeadline(cs)
		}
		if o.Revision != p.rev && cs.Outcome == swarmv1.OutcomeCompleted {
			cs.Message = fmt.Sprintf("runs revision %s; %s", stack.ShortRev(o.Revision), cs.Message)
		}
	}
}

// checkDeadline fails a cluster still not Ready on the release in progress past the
// progress deadline.
func (p *planner) checkDeadline(cs *swarmv1.StackSetClusterStatus) {
	if cs.Revision != p.rev || p.plan.Status.LastCompletedRevision == p.rev {
		return
	}
	end := cs.WrittenAt.Add(p.deadline())
	if p.in.Now.Before(end) {
		p.requeueAt(end)
		return
	}
	cs.Outcome = swarmv1.OutcomeDeadlineExceeded
	cs.Message = fmt.Sprintf("not Ready %s after the set wrote revision %s (progressDeadline): %s",
		end.Sub(cs.WrittenAt.Time), stack.ShortRev(p.rev), cs.Message)
}

func (p *planner) deadline() time.Duration {
	return reconcile.DurationOr(p.in.Spec.Strategy.ProgressDeadline, defaultProgressDeadline)
}

func (p *planner) stackName(cluster string) string {
	return (&swarmv1.SwarmStackSet{ObjectMeta: metav1.ObjectMeta{Name: p.in.Name}}).StackName(cluster)
}

// failures counts the clusters on which the release in progress failed.
func (p *planner) failures() int {
	n := 0
	for _, cs := range p.clusters {
		if cs.Revision == p.rev && failed(cs.Outcome) {
			n++
		}
	}
	return n
}

func failed(outcome string) bool {
	return outcome != outcomePending && outcome != swarmv1.OutcomeProgressing && outcome != swarmv1.OutcomeCompleted && outcome != outcomeHalted
}

// halt stops the release; with RollbackAll the clusters on it get the last completed
// template back.
func (p *planner) halt() {
	p.halted = true
	st := &p.plan.Status
	st.Halted = true
	var names []string
	for _, c := range p.sortedClusters() {
		if c.Revision == p.rev && failed(c.Outcome) {
			names = append(names, c.Name+" ("+c.Outcome+")")
		}
	}
	msg := fmt.Sprintf("Release of revision %s halted: %d cluster(s) failed, maxFailures is %d: %s",
		stack.ShortRev(p.rev), len(names), p.in.Spec.Strategy.MaxFailures, strings.Join(names, ", "))
	outcome := releaseHalted
	if p.in.Spec.Strategy.OnFailure == swarmv1.OnFailureRollbackAll {
		if st.LastCompletedTemplate == nil || st.LastCompletedRevision == "" {
			msg += "; no completed release to roll back to"
		} else {
			outcome = releaseRolledBack
			msg += "; every cluster that received it goes back to revision " + stack.ShortRev(st.LastCompletedRevision)
		}
	}
	p.event(corev1.EventTypeWarning, swarmv1.EventReleaseHalted, "%s", msg)
	if len(st.History) > 0 && st.History[0].Revision == p.rev {
		now := metav1.NewTime(p.in.Now)
		st.History[0].Outcome, st.History[0].FinishedAt, st.History[0].Message = outcome, &now, msg
	}
}

// holdHalted writes nothing of the halted revision; with RollbackAll every stack still
// on it gets the last completed template back. Without, every stack on it that neither
// completed nor failed is suspended: its Swarm would otherwise get the halted revision
// later (when it answers again, a freeze ends, a drain ends). A step is Completed when
// all its clusters run the revision, Ready, and nothing goes back; Halted otherwise.
func (p *planner) holdHalted() {
	st := &p.plan.Status
	rollback := p.in.Spec.Strategy.OnFailure == swarmv1.OnFailureRollbackAll && st.LastCompletedTemplate != nil && st.LastCompletedRevision != ""
	for _, s := range p.steps {
		s.phase = swarmv1.StepCompleted
		for _, name := range s.clusters {
			cs := p.clusters[name]
			onRev := cs.Revision == p.rev
			if onRev && cs.Outcome == swarmv1.OutcomeCompleted && !rollback {
				s.updated++
				continue
			}
			s.phase = swarmv1.StepHalted
			switch {
			case onRev && rollback:
				p.write(name, st.LastCompletedRevision, st.LastCompletedTemplate)
				p.event(corev1.EventTypeNormal, swarmv1.EventRollbackAll, "SwarmStack %s goes back to revision %s", cs.Stack, stack.ShortRev(st.LastCompletedRevision))
			case onRev:
				p.suspendHalted(cs)
			case cs.Revision == "":
				cs.Outcome = outcomeHalted
				cs.Message = fmt.Sprintf("release of revision %s halted before this cluster", stack.ShortRev(p.rev))
			default:
				cs.Message = fmt.Sprintf("release of revision %s halted; runs revision %s: %s", stack.ShortRev(p.rev), stack.ShortRev(cs.Revision), cs.Message)
			}
		}
	}
}

// suspendHalted suspends the stack of a cluster on the halted revision that its stack
// has neither completed nor failed, nor started rolling out: a rollout already writing
// to the Swarm is left to finish, so that the stack still judges it and rolls it back.
func (p *planner) suspendHalted(cs *swarmv1.StackSetClusterStatus) {
	o := p.in.Stacks[cs.Name]
	if o.Ready || o.Failed != "" || o.Revision != p.rev {
		return
	}
	if !o.Suspended && !o.RolloutStartedAt.IsZero() && cs.WrittenAt != nil && !o.RolloutStartedAt.Before(cs.WrittenAt.Time) {
		cs.Message = fmt.Sprintf("release of revision %s halted; the rollout this cluster started goes on: %s", stack.ShortRev(p.rev), cs.Message)
		return
	}
	cs.Message = fmt.Sprintf("release of revision %s halted before this cluster completed it: its SwarmStack is suspended; %s", stack.ShortRev(p.rev), cs.Message)
	if o.Suspended || p.in.Spec.Suspend {
		return
	}
	p.plan.Writes = append(p.plan.Writes, Write{Cluster: cs.Name, Revision: p.rev, Template: &p.in.Spec.Template, Suspend: true})
	p.event(corev1.EventTypeWarning, swarmv1.EventStackSuspended, "SwarmStack %s suspended: the release of revision %s halted before it completed there", cs.Stack, stack.ShortRev(p.rev))
}

// walk goes through the steps in order: a step starts when every earlier one completed
// and soaked, and (Manual) was approved; within it at most maxConcurrent clusters roll.
func (p *planner) walk() {
	open := true
	for _, s := range p.steps {
		if !open {
			s.phase = swarmv1.StepPending
			continue
		}
		open = p.walkStep(s)
	}
	if !open || p.plan.Status.LastCompletedRevision == p.rev {
		return
	}
	st := &p.plan.Status
	st.LastCompletedRevision, st.LastCompletedTemplate = p.rev, p.in.Spec.Template.DeepCopy()
	if len(st.History) > 0 && st.History[0].Revision == p.rev {
		now := metav1.NewTime(p.in.Now)
		st.History[0].Outcome, st.History[0].FinishedAt = swarmv1.OutcomeCompleted, &now
	}
	p.event(corev1.EventTypeNormal, swarmv1.EventReleaseCompleted, "Revision %s%s released to every cluster", stack.ShortRev(p.rev), stack.VersionSuffix(p.in.Spec.Template.Spec.Version))
}

// walkStep sets one open step's phase and writes its next clusters; it says whether the
// next step may start.
func (p *planner) walkStep(s *step) bool {
	if len(s.clusters) == 0 {
		s.phase = swarmv1.StepCompleted
		return true
	}
	started := false
	for _, name := range s.clusters {
		started = started || p.clusters[name].Revision == p.rev
	}
	if s.manual && !s.approved && !started {
		s.phase = swarmv1.StepAwaitingApproval
		return false
	}
	inFlight, done := 0, 0
	var pending []string
	var soakedAt time.Time
	for _, name := range s.clusters {
		cs := p.clusters[name]
		switch {
		case cs.Revision != p.rev:
			pending = append(pending, name)
		case cs.Outcome == swarmv1.OutcomeCompleted:
			done++
			s.updated++
			if end := cs.ReadyAt.Add(s.soak); end.After(soakedAt) {
				soakedAt = end
			}
		case failed(cs.Outcome):
			done++ // within maxFailures, or the set had halted
		default:
			inFlight++
		}
	}
	if !started && len(pending) > 0 && !p.in.Spec.Suspend {
		p.event(corev1.EventTypeNormal, swarmv1.EventStepStarted, "Step %s of revision %s started", s.name, stack.ShortRev(p.rev))
	}
	for _, name := range pending[:min(len(pending), max(s.limit()-inFlight, 0))] {
		p.write(name, p.rev, &p.in.Spec.Template)
		inFlight++
	}
	if done < len(s.clusters) {
		s.phase = swarmv1.StepProgressing
		return false
	}
	if s.soak > 0 {
		s.soakedAt = &metav1.Time{Time: soakedAt}
	}
	if p.in.Now.Before(soakedAt) {
		s.phase = swarmv1.StepSoaking
		p.requeueAt(soakedAt)
		return false
	}
	s.phase = swarmv1.StepCompleted
	return true
}

// write plans a generated stack's write and reports it in the cluster's status.
func (p *planner) write(cluster, rev string, t *swarmv1.SwarmStackTemplate) {
	if p.in.Spec.Suspend {
		return
	}
	p.plan.Writes = append(p.plan.Writes, Write{Cluster: cluster, Revision: rev, Template: t})
	cs := p.clusters[cluster]
	cs.Revision, cs.Outcome, cs.Ready, cs.ReadyAt = rev, swarmv1.OutcomeProgressing, false, nil
	cs.WrittenAt = &metav1.Time{Time: p.in.Now}
	cs.Message = "revision " + stack.ShortRev(rev) + " written"
	if rev == p.rev && p.plan.Status.LastCompletedRevision != p.rev {
		p.requeueAt(p.in.Now.Add(p.deadline()))
	}
}

// giveReleaseInForce writes the last completed template to a selected cluster that has
// no stack yet and whose step has not reached it: it joins with the release in force.
func (p *planner) giveReleaseInForce() {
	st := &p.plan.Status
	if st.LastCompletedTemplate == nil || st.LastCompletedRevision == p.rev {
		return
	}
	for _, cs := range p.sortedClusters() {
		if cs.Step == "" || cs.Revision != "" {
			continue
		}
		p.write(cs.Name, st.LastCompletedRevision, st.LastCompletedTemplate)
		cs.Message = fmt.Sprintf("joined with the release in force, revision %s", stack.ShortRev(st.LastCompletedRevision))
	}
}

func (p *planner) sortedClusters() []*swarmv1.StackSetClusterStatus {
	out := make([]*swarmv1.StackSetClusterStatus, 0, len(p.clusters))
	for _, cs := range p.clusters {
		out = append(out, cs)
	}
	slices.SortFunc(out, func(a, b *swarmv1.StackSetClusterStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// report writes the status: steps, clusters, the columns and the conditions.
func (p *planner) report() {
	st, gen := &p.plan.Status, p.in.Generation
	st.Steps, st.Clusters, st.CurrentStep = nil, nil, ""
	var ready int
	for _, s := range p.steps {
		st.Steps = append(st.Steps, swarmv1.StackSetStepStatus{
			Name: s.name, Phase: s.phase, Clusters: int32(len(s.clusters)), Updated: s.updated, Approved: s.approved, SoakedAt: s.soakedAt,
		})
		if st.CurrentStep == "" && s.phase != swarmv1.StepCompleted {
			st.CurrentStep = s.name
		}
	}
	for _, cs := range p.sortedClusters() {
		st.Clusters = append(st.Clusters, *cs)
		if cs.Revision == p.rev && cs.Outcome == swarmv1.OutcomeCompleted {
			ready++
		}
	}
	st.ClustersSummary = fmt.Sprintf("%d/%d", ready, len(p.in.Clusters))
	if len(st.Unmatched) > 0 {
		reconcile.SetCondition(&st.Conditions, gen, swarmv1.ConditionUnmatched, metav1.ConditionTrue, swarmv1.ReasonUnmatched,
			fmt.Sprintf("No step selects SwarmCluster(s) %s: they receive no release", strings.Join(st.Unmatched, ", ")))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionUnmatched)
	}
	rev := stack.ShortRev(p.rev)
	cur := p.currentStep()
	switch {
	case p.halted:
		msg := fmt.Sprintf("Release of revision %s halted", rev)
		if len(st.History) > 0 && st.History[0].Revision == p.rev && st.History[0].Message != "" {
			msg = st.History[0].Message
		}
		reconcile.MarkFailed(&st.Conditions, gen, swarmv1.ReasonReleaseHalted, msg, true)
	case len(p.in.Clusters) == 0:
		reconcile.MarkReady(&st.Conditions, gen, swarmv1.ReasonNoClusters, "The cluster selector selects no SwarmCluster")
	case p.in.Spec.Suspend:
		reconcile.MarkFailed(&st.Conditions, gen, swarmv1.ReasonSuspended, fmt.Sprintf("The set is suspended; %s clusters Ready on revision %s", st.ClustersSummary, rev), false)
	case cur == nil:
		reconcile.MarkReady(&st.Conditions, gen, swarmv1.ReasonReleaseCompleted, fmt.Sprintf("Revision %s runs on %s clusters", rev, st.ClustersSummary))
	case cur.phase == swarmv1.StepAwaitingApproval:
		reconcile.MarkReconciling(&st.Conditions, gen, swarmv1.ReasonAwaitingApproval,
			fmt.Sprintf("Step %s of revision %s waits for approval: kubectl swarm approve %s %s", cur.name, rev, p.in.Name, cur.name))
	case cur.phase == swarmv1.StepSoaking:
		reconcile.MarkReconciling(&st.Conditions, gen, swarmv1.ReasonSoaking,
			fmt.Sprintf("Step %s of revision %s soaks until %s", cur.name, rev, cur.soakedAt.UTC().Format(time.RFC3339)))
	default:
		reconcile.MarkReconciling(&st.Conditions, gen, swarmv1.ReasonReleaseProgressing,
			fmt.Sprintf("Step %s of revision %s: %d/%d clusters Ready", cur.name, rev, cur.updated, len(cur.clusters)))
	}
}

func (p *planner) currentStep() *step {
	for _, s := range p.steps {
		if s.phase != swarmv1.StepCompleted {
			return s
		}
	}
	return nil
}
