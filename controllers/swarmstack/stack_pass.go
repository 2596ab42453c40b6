package swarmstack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/redact"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// A stack pass observes, judges, decides once, then summarizes:
//
//  1. observe reads everything the pass decides on (the stack's services, its inputs and
//     rendered revision, the requests, the gates' verdicts) and writes nothing;
//  2. judge follows the rollout in flight to its end whatever else holds the stack (a
//     source outage, a gate, suspend, a refused write): a release always gets its
//     outcome;
//  3. act takes one action: a requested rollback, writing the revision (or the rest of
//     it), or nothing;
//  4. summarize sets Ready, Reconciling and Stalled once, from what the steps found.
//
// The steps record facts on the scope; only summarize turns them into conditions.

// stackScope is the state of one reconcile of one SwarmStack; it lives for that pass
// only (the reconciler is shared by concurrent workers).
type stackScope struct {
	r         *Reconciler
	s         *swarmv1.SwarmStack
	log       logr.Logger
	stackName string
	owner     string
	now       time.Time
	interval  time.Duration
	began     time.Time

	// readOnly: the pass runs on the informer's copy of a stack that looks settled
	// (stack_settled.go); wouldWrite: it found something to write or record, so it is
	// dropped and run again on the API server's copy.
	readOnly, wouldWrite bool

	conn     swarm.Swarm
	in       *stack.Inputs
	rendered *compose.Stack
	current  []swarmtypes.Service
	redact   *redact.Redactor

	// Requests found on the object, acted on by later steps.
	rollbackRequest string // a new value of the rollback annotation
	retryRequest    string // a new value of the retry annotation
	// rolledBack names the services this pass asked Swarm to roll back.
	rolledBack map[string]bool
	// jobs are the runs of the stack's job services (jobRuns), read once per pass.
	jobs     map[string]stack.JobRun
	jobsRead bool
	// release says where each service stands in an ordered release (updateOrder
	// DependsOn); after are the services as read after this pass's write.
	release          map[string]stack.ReleaseStep
	after            []swarmtypes.Service
	waitingFirstWave bool
	servicesBefore   []swarmv1.ServiceStatus // status.services as the pass found them
	// cached: current came from the Swarm's service cache, not from a manager.
	cached bool
	// renderSkipped: the inputs were those of the revision in force (unchangedRevision).
	renderSkipped bool
	// revisionInForce: this pass saw the rendered revision take effect (its rollout
	// completed, or nothing on the swarm differed): what it replaced may now be unused.
	revisionInForce bool

	// Facts for summarize.
	blocked  *condFact      // the stack cannot be read or touched (conflict, cluster)
	input    *condFact      // the wanted revision is unknown (source, compose files)
	inputErr error          // returned for an input problem that only an edit fixes
	hold     *condFact      // a gate holds the new revision, or failed to decide
	holdErr  error          // a gate's error
	running  *stack.Verdict // the rollout in flight, still running after judge
	partial  bool           // the rollout in flight has services left to write
	acted    *condFact      // what act did or refused
	stopped  *swarmv1.HistoryEntry

	result ctrl.Result
}

// condFact is one fact a step found, in the terms of a condition.
type condFact struct {
	reason, msg string
	stalled     bool
	ready       bool
	progressing bool
}

func (r *Reconciler) reconcileNormal(ctx context.Context, s *swarmv1.SwarmStack) (ctrl.Result, error) {
	sc := r.newScope(ctx, s)
	err := sc.run(ctx)
	sc.logPass(err)
	return sc.result, err
}

func (r *Reconciler) newScope(ctx context.Context, s *swarmv1.SwarmStack) *stackScope {
	return &stackScope{
		r: r, s: s, log: ctrl.LoggerFrom(ctx), stackName: stack.NameOf(s), owner: stack.OwnerOf(s), now: r.Now(),
		interval: reconcile.DurationOr(s.Spec.Interval, defaultStackInterval), redact: &redact.Redactor{}, began: time.Now(),
	}
}

// run is one pass, summarized and redacted, not logged yet.
func (sc *stackScope) run(ctx context.Context) error {
	err := sc.pass(ctx)
	sc.result.Priority = passPriority(sc.result, sc.interval, &sc.s.Status)
	sc.summarize()
	// Whatever a step wrote into status, events or the returned error went through here.
	sc.redact.Status(&sc.s.Status)
	return sc.redact.Err(err)
}

func (sc *stackScope) pass(ctx context.Context) error {
	if err := sc.observe(ctx); err != nil || sc.blocked != nil {
		return err
	}
	sc.takeRequests()
	sc.checkGates(ctx)
	sc.judge(ctx)
	err := sc.act(ctx)
	if err == nil && sc.acted == nil {
		err = sc.cleanUp(ctx)
	}
	sc.showRelease(ctx)
	if err == nil {
		err = sc.holdErr
	}
	if err == nil && sc.input != nil {
		err = sc.inputErr
	}
	if sc.running != nil && errors.Is(err, crreconcile.TerminalError(nil)) {
		// A terminal error would stop the polls that follow the rollout in flight; the
		// condition says what is wrong, and the pass after the rollout returns it.
		err = nil
	}
	return err
}

func (sc *stackScope) requeue(d time.Duration) {
	if sc.result.RequeueAfter == 0 || d < sc.result.RequeueAfter {
		sc.result.RequeueAfter = d
	}
}

func (sc *stackScope) event(typ, reason, format string, args ...any) {
	if sc.readOnly {
		sc.wouldWrite = true // the pass runs again on the API server's copy, and records it
		return
	}
	sc.r.Recorder.Event(sc.s, typ, reason, sc.redact.Text(fmt.Sprintf(format, args...)))
}

// failed is how a gate reports a problem only the user can solve (a dependency cycle, a
// freeze window that does not parse).
func (sc *stackScope) failed(reason, msg string, stalled bool) {
	sc.hold = &condFact{reason: reason, msg: msg, stalled: stalled}
}

// observe reads the stack's services, inputs and rendered revision. It writes nothing.
func (sc *stackScope) observe(ctx context.Context) error {
	s, st := sc.s, &sc.s.Status
	newer, older, err := sc.r.rivals(ctx, s, sc.stackName)
	if err != nil {
		return err
	}
	if older != "" {
		sc.blocked = &condFact{reason: swarmv1.ReasonConflict, stalled: true,
			msg: fmt.Sprintf("SwarmStack %s already manages stack %q on cluster %q", older, sc.stackName, s.Spec.ClusterRef.Name)}
		return nil
	}
	if sc.conn, err = sc.r.connect(ctx, s); err != nil {
		sc.blocked = &condFact{reason: swarmv1.ReasonClusterNotReady, msg: err.Error()}
		sc.requeue(30 * time.Second) // the cluster watch usually brings us back first
		return nil                   //nolint:nilerr // reported in status; the cluster watch or the timer retries
	}
	// Observed from the Swarm's service cache when it is synced (no Docker request);
	// a write reads them again first (fresh). A rollout in flight reads a manager: its
	// judgement waits on task counts, which change without events.
	read := swarm.ObserveStackServices
	if st.RolloutInFlight() != nil {
		read = directRead
	}
	if sc.current, sc.cached, err = read(ctx, sc.conn, sc.stackName); err != nil {
		sc.blocked = &condFact{reason: swarmv1.ReasonClusterNotReady, msg: "Reading the stack's services: " + err.Error()}
		sc.requeue(10 * time.Second)
		return nil //nolint:nilerr // reported in status; retried on a timer
	}
	if sc.readOnly {
		sc.conn = readOnlySwarm{Swarm: sc.conn, wouldWrite: &sc.wouldWrite}
	}
	if reason, msg := stack.OwnershipProblem(sc.current, sc.owner, s.Spec.Adopt, newer); reason != "" {
		sc.blocked = &condFact{reason: reason, msg: msg, stalled: true}
		return nil
	}
	before := st.Services
	sc.servicesBefore = before
	st.Services = stack.ServiceStatuses(sc.current, stack.ExactTaskCounts(ctx, sc.conn, sc.current))
	recordServiceStates(s, before, st.Services)
	sc.readInputs(ctx)
	return nil
}

func directRead(ctx context.Context, sw swarm.Swarm, stack string) ([]swarmtypes.Service, bool, error) {
	svcs, err := sw.StackServices(ctx, stack)
	return svcs, false, err
}

// fresh reads the stack's services again from a manager when the pass observed them
// from the cache: what decides a write is read at the version it writes, and a cache
// that missed a change can then cost a pass a read, never a wrong write.
func (sc *stackScope) fresh(ctx context.Context) error {
	if !sc.cached {
		return nil
	}
	svcs, err := sc.conn.StackServices(ctx, sc.stackName)
	if err != nil {
		return fmt.Errorf("reading the stack's services: %w", err)
	}
	sc.current, sc.cached = svcs, false
	return nil
}

// readInputs gathers and renders the compose files. A problem with them is kept for
// summarize: the rollout in flight is judged all the same.
func (sc *stackScope) readInputs(ctx context.Context) {
	s, st := sc.s, &sc.s.Status
	in, err := stack.GatherInputsFrom(ctx, sc.r.Client, sc.r.Sources, s, sc.stackName)
	if in != nil {
		sc.redact.Add(in.Sensitive...)
	}
	switch {
	case errors.Is(err, stack.ErrSourceNotReady):
		// The source watch brings us back when its artifact changes; what runs stays.
		sc.input = &condFact{reason: swarmv1.ReasonSourceNotReady, msg: err.Error()}
		sc.requeue(stack.SourceRecheck)
		return
	case errors.Is(err, stack.ErrSourceMissing):
		// The ConfigMap and Secret watches bring us back when it appears.
		sc.input = &condFact{reason: swarmv1.ReasonSourceNotFound, msg: err.Error()}
		return
	case err != nil:
		sc.input = &condFact{reason: swarmv1.ReasonComposeInvalid, msg: err.Error(), stalled: true}
		return
	}
	in.Opts.NameKey = sc.r.NamingKey
	modes, err := sc.r.securityModes(ctx, s)
	if err != nil {
		// Fail closed: without the level nothing new is written; the error retries.
		sc.input = &condFact{reason: swarmv1.ReasonPolicyViolation, msg: err.Error()}
		sc.inputErr = err
		return
	}
	if rendered := sc.unchangedRevision(in, policyKey(modes, sc.r.Security)); rendered != nil {
		sc.in, sc.rendered, sc.renderSkipped = in, rendered, true
		metrics.StackRenders.WithLabelValues("skipped").Inc()
		return
	}
	metrics.StackRenders.WithLabelValues("rendered").Inc()
	rendered, err := sc.r.Renderer.Render(in.Files, in.Opts)
	// Values of the files decrypted while rendering, before any message is written.
	sc.redact.Add(in.Sensitive...)
	if derr := in.DecryptionFailure(); derr != nil {
		// Not Stalled: a key added to the Secret, or the next commit, can open the file.
		msg := sc.redact.Text(derr.Error())
		if !isReadyWithReason(st.Conditions, swarmv1.ReasonDecryptionFailed, msg) {
			sc.event(corev1.EventTypeWarning, swarmv1.ReasonDecryptionFailed, "%s", msg)
		}
		sc.input = &condFact{reason: swarmv1.ReasonDecryptionFailed, msg: msg}
		return
	}
	if err != nil {
		msg := sc.redact.Text(err.Error())
		if !isReadyWithReason(st.Conditions, swarmv1.ReasonComposeInvalid, msg) {
			sc.event(corev1.EventTypeWarning, swarmv1.ReasonComposeInvalid, "%s", msg)
		}
		sc.input = &condFact{reason: swarmv1.ReasonComposeInvalid, msg: msg, stalled: true}
		sc.inputErr = crreconcile.TerminalError(errors.New(msg))
		return
	}
	policyWarnings, ok := sc.checkSecurity(modes, in.Files, rendered)
	if !ok {
		return
	}
	sc.in, sc.rendered = in, rendered
	st.InputsDigest = stack.RenderDigest(sc.r.NamingKey, in, policyKey(modes, sc.r.Security), rendered.Revision, stack.RenderedServices(rendered))
	sc.noteWarnings(append(slices.Clone(rendered.Warnings), policyWarnings...))
}

// unchangedRevision is the revision in force, without a render, when the inputs and
// the stack's services on the Swarm are those of the render that recorded
// status.inputsDigest: then rendering again could only give the same revision, and
// after a restart the render is most of a steady-state pass's cost. It holds what a
// pass that writes nothing reads of a render: the revision, its services' names and
// spec hashes (those on the Swarm, which the digest proved are the rendered ones), and
// its warnings. A pass that may write or prune renders: a revision not in force yet, a
// rollout in flight (its end may prune), a retry request (it writes every service), a
// failed prune to retry, a service changed by hand (OwnedServices).
func (sc *stackScope) unchangedRevision(in *stack.Inputs, policy string) *compose.Stack {
	s, st := sc.s, &sc.s.Status
	if st.InputsDigest == "" || st.LastAppliedRevision == "" || st.LastAttemptedRevision != st.LastAppliedRevision ||
		st.RolloutInFlight() != nil || meta.FindStatusCondition(st.Conditions, swarmv1.ConditionPruned) != nil {
		return nil
	}
	if v := s.Annotations[swarmv1.AnnotationRetry]; v != "" && v != st.LastHandledRetry {
		return nil
	}
	services, ok := stack.OwnedServices(sc.current, sc.owner)
	if !ok || stack.RenderDigest(sc.r.NamingKey, in, policy, st.LastAppliedRevision, services) != st.InputsDigest {
		return nil
	}
	rendered := &compose.Stack{Name: sc.stackName, Revision: st.LastAppliedRevision, Warnings: st.Warnings}
	for _, svc := range services {
		rendered.Services = append(rendered.Services, compose.Service{Name: svc.Name, Hash: svc.Hash})
	}
	return rendered
}

// noteWarnings keeps the revision's warnings in status and announces new ones once.
func (sc *stackScope) noteWarnings(ws []string) {
	st := &sc.s.Status
	ws = capWarnings(ws)
	if slices.Equal(ws, st.Warnings) {
		return
	}
	st.Warnings = ws
	if len(ws) > 0 {
		sc.event(corev1.EventTypeWarning, swarmv1.EventWarnings, "%s", strings.Join(ws, "; "))
	}
}

func (sc *stackScope) addWarnings(ws []string) {
	if len(ws) > 0 {
		sc.noteWarnings(append(slices.Clone(sc.s.Status.Warnings), ws...))
	}
}

// takeRequests notes the imperative requests. While suspended none is taken: they wait
// for the resume.
func (sc *stackScope) takeRequests() {
	s, st := sc.s, &sc.s.Status
	if v := s.Annotations[swarmv1.AnnotationReconcileRequestedAt]; v != "" {
		st.LastHandledReconcileAt = v
	}
	if s.Spec.Suspend {
		return
	}
	if v := s.Annotations[swarmv1.AnnotationRollback]; v != "" && v != st.LastHandledRollback {
		sc.rollbackRequest = v
	}
	if v := s.Annotations[swarmv1.AnnotationRetry]; v != "" && v != st.LastHandledRetry {
		sc.retryRequest = v
	}
}

// newRevisionWanted: this pass would write a revision not yet written (or retry one),
// if no gate holds it.
func (sc *stackScope) newRevisionWanted() bool {
	return !sc.s.Spec.Suspend && sc.rendered != nil && sc.rollbackRequest == "" &&
		(sc.rendered.Revision != sc.s.Status.LastAttemptedRevision || sc.retryRequest != "")
}

// checkGates asks the gates about a revision that is about to be written for the first
// time. A revision once written is followed and judged like any other: no gate holds
// what already runs, and no gate hides its outcome.
func (sc *stackScope) checkGates(ctx context.Context) {
	if !sc.newRevisionWanted() || sc.rendered.Revision == sc.s.Status.LastAppliedRevision && sc.retryRequest == "" {
		return
	}
	// Adoption bookkeeping records what ran before the operator's first write.
	if _, _, _, err := recordAdoption(ctx, sc); err != nil {
		sc.holdErr = err
		return
	}
	for _, gate := range revisionGates {
		reason, msg, recheck, err := gate(ctx, sc)
		if err != nil || sc.hold != nil {
			sc.holdErr = err
			if sc.hold == nil {
				sc.hold = &condFact{reason: swarmv1.ReasonProgressing, msg: "Checking whether the revision may be written: " + err.Error()}
			}
			return
		}
		if reason != "" {
			sc.hold = &condFact{reason: reason, msg: msg, progressing: true}
			sc.requeue(recheck)
			return
		}
	}
}

// held: a gate holds the new revision, or could not decide.
func (sc *stackScope) held() bool { return sc.hold != nil || sc.holdErr != nil }

// writesNewRevision: act will write the rendered revision in this pass.
func (sc *stackScope) writesNewRevision() bool {
	return sc.newRevisionWanted() && !sc.held()
}

// judge follows the rollout in flight. A new revision that this pass writes, or a
// rollback or retry request, supersedes a rollout that has not ended, as kubectl apply
// does to a Deployment mid-rollout; nothing else ends it before Swarm does.
func (sc *stackScope) judge(ctx context.Context) {
	st := &sc.s.Status
	cur := st.RolloutInFlight()
	if cur == nil {
		return
	}
	sc.partial = sc.writeIncomplete(cur)
	verdict := sc.judgeRollout(ctx, cur)
	superseded := sc.rollbackRequest != "" || sc.retryRequest != "" ||
		sc.writesNewRevision() && sc.rendered.Revision != cur.Revision
	if superseded && (verdict.Outcome == "" || sc.partial) {
		sc.finishRollout(cur, stack.Verdict{Outcome: swarmv1.OutcomeSuperseded, Reason: swarmv1.ReasonProgressing, Message: supersededBy(sc)})
		return
	}
	ordered := cur.UpdateOrder == swarmv1.UpdateOrderDependsOn
	if verdict.Outcome == swarmv1.OutcomeCompleted && sc.partial {
		// Every service written so far converged, but the revision is not all written:
		// act writes the rest.
		msg := "writing the services Swarm refused so far"
		if ordered {
			msg = waveDoneMessage
		}
		verdict = stack.Verdict{Reason: swarmv1.ReasonProgressing, Message: msg}
	}
	deadline := defaultProgressDeadline
	if sc.s.Spec.ProgressDeadlineSeconds != nil {
		deadline = time.Duration(*sc.s.Spec.ProgressDeadlineSeconds) * time.Second
	}
	// An ordered release is partial until its last wave: its deadline covers it all.
	if verdict.Outcome == "" && (!sc.partial || ordered) && sc.now.Sub(stack.DeadlineFrom(cur)) > deadline {
		verdict = sc.onDeadline(ctx, cur.Revision, deadline)
	}
	if verdict.Outcome == "" {
		if verdict.RollbackCause != "" {
			// Swarm says why it rolls back only while it does; keep it for history.
			cur.Message = verdict.RollbackCause
		}
		sc.running = &verdict
		sc.requeue(rolloutPoll)
		return
	}
	if cur.Message == rollbackRequested && (verdict.Outcome == swarmv1.OutcomeRolledBack || verdict.Outcome == swarmv1.OutcomeCompleted) {
		verdict = stack.Verdict{Outcome: swarmv1.OutcomeRolledBackOnRequest, Reason: swarmv1.ReasonRolledBackOnRequest, Message: verdict.Message}
	}
	if verdict.Outcome == swarmv1.OutcomeRolledBack {
		verdict.Message += stack.FailedTaskCause(ctx, sc.conn, sc.current, cur.StartedAt.Time)
	}
	if stack.FailedOutcome(verdict.Outcome) && sc.s.Spec.RollbackPolicy == swarmv1.RollbackPolicyStack {
		if superseded {
			// The revision that supersedes it is written in this pass: putting the old
			// specs back first would only be overwritten.
			verdict.Message += "; not rolled back as a stack: " + supersededBy(sc)
		} else {
			sc.rollBackRevision(ctx, cur, &verdict)
		}
	}
	sc.finishRollout(cur, verdict)
	sc.stopped = cur
}

// writeIncomplete: the rollout in flight is of the rendered revision and some of its
// services are still to be written (Swarm refused them so far).
func (sc *stackScope) writeIncomplete(cur *swarmv1.HistoryEntry) bool {
	if cur.WrittenAt != nil || cur.Message == rollbackRequested {
		return false
	}
	if sc.rendered == nil {
		// Without the inputs nothing can be compared; a rollout written before WrittenAt
		// existed is followed as written.
		return false
	}
	if sc.rendered.Revision != cur.Revision {
		return false
	}
	return !sc.unwrittenPlan(cur, sc.current).Empty()
}

// unwrittenPlan is what the rendered revision still has to write. A service that Swarm
// rolled back since the rollout started is not in it: writing it again would only fail
// again, and the rollout is judged on that rollback.
func (sc *stackScope) unwrittenPlan(cur *swarmv1.HistoryEntry, svcs []swarmtypes.Service) stack.ServicePlan {
	plan := stack.PlanServices(sc.rendered, svcs, sc.owner, sc.prunesOnWrite(), sc.retryRequest != "")
	if cur == nil {
		return plan
	}
	rolledBack := map[string]bool{}
	for _, svc := range svcs {
		if u := svc.UpdateStatus; u != nil && stack.RollingBackSince(u, cur.StartedAt.Time) {
			rolledBack[svc.Spec.Name] = true
		}
	}
	keep := plan.Update[:0:0]
	for _, svc := range plan.Update {
		if !rolledBack[svc.Name] {
			keep = append(keep, svc)
		}
	}
	plan.Update = keep
	return plan
}

// prunesOnWrite: services the revision drops go with its write. With rollbackPolicy
// Stack they go only once the revision completed: a stack rollback must find them.
func (sc *stackScope) prunesOnWrite() bool {
	return stack.PruneEnabled(sc.s) && sc.s.Spec.RollbackPolicy != swarmv1.RollbackPolicyStack
}

// act takes the pass's one action.
func (sc *stackScope) act(ctx context.Context) error {
	if sc.s.Spec.Suspend {
		sc.log.V(1).Info("Suspended: leaving the swarm as it is")
		sc.requeue(reconcile.Jitter(sc.interval))
		return nil
	}
	if sc.rendered == nil {
		return nil
	}
	if sc.rollbackRequest != "" {
		return sc.rollBackOnRequest(ctx)
	}
	if cur := sc.s.Status.RolloutInFlight(); cur != nil {
		// A rollout runs: wait for it, unless Swarm refused part of its revision and no
		// service of it is rolling back (then the revision has failed already).
		if !sc.partial || sc.running == nil || sc.running.Reason == swarmv1.ReasonRollingBack {
			return nil
		}
	} else if sc.held() {
		return nil // pass returns the gate's error, after the rollout in flight was judged
	}
	return sc.applyRevision(ctx)
}

// rollBackOnRequest acts on a new rollback annotation. The request counts as handled
// only once every service's rollback was written; the others are retried, so a partly
// failed rollback never lets the next pass write the new spec back.
func (sc *stackScope) rollBackOnRequest(ctx context.Context) error {
	s, st := sc.s, &sc.s.Status
	if err := sc.fresh(ctx); err != nil {
		return err
	}
	var rolled []string
	var errs []error
	for _, svc := range sc.current {
		// Only services still at the revision being rolled back: a second pass over the
		// same request must not roll them "back" again to the spec they just left.
		if svc.PreviousSpec == nil || svc.Spec.Labels[swarmv1.LabelOwner] != sc.owner ||
			svc.Spec.Labels[swarmv1.LabelRevision] != st.LastAttemptedRevision {
			continue
		}
		if err := sc.conn.RollbackService(ctx, svc.ID, svc.Version); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", svc.Spec.Name, err))
			continue
		}
		rolled = append(rolled, svc.Spec.Name)
	}
	if len(rolled) > 0 {
		if cur := st.RolloutInFlight(); cur == nil || cur.Message != rollbackRequested {
			st.History = stack.PushHistory(st.History, swarmv1.HistoryEntry{
				Revision: st.LastAttemptedRevision, Version: s.Spec.Version, StartedAt: metav1.NewTime(sc.now),
				Outcome: swarmv1.OutcomeProgressing, Message: rollbackRequested,
			})
		}
		sc.event(corev1.EventTypeNormal, swarmv1.EventRollbackRequested, "Rolling back %s to their previous specs", strings.Join(rolled, ", "))
	}
	if err := errors.Join(errs...); err != nil {
		sc.acted = &condFact{reason: swarmv1.ReasonRollbackFailed, msg: "Rollback failed, retrying: " + err.Error()}
		return err
	}
	st.LastHandledRollback = sc.rollbackRequest
	sc.requeue(stack.StartGrace)
	if len(rolled) == 0 && st.RolloutInFlight() == nil {
		sc.event(corev1.EventTypeWarning, swarmv1.EventRollbackSkipped, "No service of the stack has a previous spec to roll back to")
		return nil
	}
	sc.acted = &condFact{reason: swarmv1.ReasonRollingBack, msg: "Rolling back " + strings.Join(rolled, ", "), progressing: true}
	return nil
}

// applyRevision writes what differs between the rendered revision and the swarm.
func (sc *stackScope) applyRevision(ctx context.Context) error {
	s, st, rendered := sc.s, &sc.s.Status, sc.rendered
	retry := sc.retryRequest != ""
	// No rollback loop: a revision that failed, or that a requested rollback took back,
	// is not written again by itself.
	if last := stack.LastOutcome(st.History); !retry && rendered.Revision == st.LastAttemptedRevision && last.Revision == rendered.Revision && writtenBackOnlyOnRequest(last.Outcome) {
		sc.requeue(reconcile.Jitter(sc.interval))
		if last.Outcome == swarmv1.OutcomeRolledBackOnRequest {
			sc.acted = &condFact{reason: swarmv1.ReasonRolledBackOnRequest, ready: true,
				msg: fmt.Sprintf("Rolled back on request from revision %s; it is not written again until the spec changes or a retry is requested", stack.ShortRev(last.Revision))}
			return nil
		}
		sc.acted = &condFact{reason: stack.OutcomeReason(last.Outcome), stalled: true,
			msg: failedRevisionMessage(last)}
		return nil
	}
	cur := st.RolloutInFlight()
	plan := sc.unwrittenPlan(cur, sc.current)
	if !plan.Empty() && sc.cached {
		if err := sc.fresh(ctx); err != nil {
			return err
		}
		plan = sc.unwrittenPlan(cur, sc.current)
	}
	if plan.Empty() {
		return sc.nothingToWrite()
	}
	complete := true // this write completes the revision
	if sc.ordered() {
		all := len(plan.Create) + len(plan.Update)
		plan, sc.release = stack.OrderRelease(rendered, plan, sc.current, cur, sc.jobRuns(ctx))
		complete = len(plan.Create)+len(plan.Update) == all
		if plan.Empty() {
			return sc.waitForWave(cur)
		}
	}
	for _, name := range plan.Drifted {
		sc.event(corev1.EventTypeWarning, swarmv1.EventDriftCorrected, "Service %s was changed outside the operator; restoring revision %s", name, stack.ShortRev(rendered.Revision))
	}
	queryRegistry := stack.QueryRegistryFor(s, rendered.Revision)
	sc.log.Info("Applying stack", "revision", rendered.Revision, "create", len(plan.Create), "update", len(plan.Update), "remove", len(plan.Prune))
	warnings, applyErr := stack.Apply(ctx, sc.conn, rendered, sc.in, plan, sc.current, sc.owner, rendered.Revision, queryRegistry)
	sc.addWarnings(warnings)
	after, readErr := sc.conn.StackServices(ctx, sc.stackName)
	if readErr == nil {
		st.Services = stack.ServiceStatuses(after, stack.ExactTaskCounts(ctx, sc.conn, after))
		sc.after = after
	}
	if applyErr != nil {
		sc.event(corev1.EventTypeWarning, swarmv1.ReasonApplyFailed, "%s", applyErr.Error())
		sc.acted = &condFact{reason: swarmv1.ReasonApplyFailed, msg: applyErr.Error()}
		// What Swarm took of the revision is a rollout: it is followed and judged, and
		// what Swarm rolls back of it is not written again by the retry.
		if readErr == nil && cur == nil {
			if written, ok := stack.RevisionWrittenAt(after, rendered.Revision); ok {
				sc.startRollout(plan, written, nil)
				sc.noteWave(plan) // not all of it may have been taken; the next passes judge what was
			}
		}
		return applyErr
	}
	now := metav1.NewTime(sc.now)
	writtenAt := &now
	if !complete {
		writtenAt = nil // later waves are still to be written
	}
	switch {
	case cur != nil:
		cur.WrittenAt = writtenAt // the rest, or the next wave, of a partly written revision
	case rendered.Revision == st.LastAttemptedRevision && !retry && len(plan.Create)+len(plan.Update) == 0:
		// Only removals of the revision in force: no rollout to follow.
	default:
		started := sc.now
		// A revision partly written by an earlier pass whose status was lost (a
		// restart) started then: its services' update states since that write belong
		// to this rollout.
		if written, ok := stack.RevisionWrittenAt(sc.current, rendered.Revision); ok && written.Before(started) && !retry {
			started = written
		}
		sc.startRollout(plan, started, writtenAt)
	}
	sc.noteWave(plan)
	if retry {
		st.LastHandledRetry = sc.retryRequest
	}
	sc.acted = &condFact{reason: swarmv1.ReasonProgressing, msg: fmt.Sprintf("Rolling out revision %s", stack.ShortRev(rendered.Revision)), progressing: true}
	sc.requeue(stack.StartGrace)
	return nil
}

// startRollout records a rollout of the rendered revision in history.
func (sc *stackScope) startRollout(plan stack.ServicePlan, started time.Time, writtenAt *metav1.Time) {
	s, st, rendered := sc.s, &sc.s.Status, sc.rendered
	st.LastAttemptedRevision = rendered.Revision
	e := swarmv1.HistoryEntry{
		Revision: rendered.Revision, Version: s.Spec.Version, StartedAt: metav1.NewTime(started), WrittenAt: writtenAt,
		Outcome: swarmv1.OutcomeProgressing, SourceRevision: sc.in.SourceRevision,
	}
	if sc.ordered() {
		e.UpdateOrder = swarmv1.UpdateOrderDependsOn
	}
	st.History = stack.PushHistory(st.History, e)
	metrics.RolloutsStarted.WithLabelValues(s.Namespace, s.Name).Inc()
	sc.event(corev1.EventTypeNormal, swarmv1.EventRolloutStarted, "Rolling out revision %s%s: %d created, %d updated, %d removed",
		stack.ShortRev(rendered.Revision), stack.VersionSuffix(s.Spec.Version), len(plan.Create), len(plan.Update), len(plan.Prune))
}

// waveDoneMessage: the waves of an ordered release written so far are done, and the
// pass writes the next (or says what it waits for).
const waveDoneMessage = "the waves written so far are done; writing the next"

// noteWave records the services an ordered release wrote in this pass, as its next
// wave, in the rollout's history entry.
func (sc *stackScope) noteWave(plan stack.ServicePlan) {
	cur := sc.s.Status.RolloutInFlight()
	names := stack.WaveNames(plan)
	if cur == nil || cur.UpdateOrder != swarmv1.UpdateOrderDependsOn || names == "" || len(cur.Waves) >= 100 {
		return
	}
	cur.Waves = append(cur.Waves, names)
	first := slices.Concat(plan.Create, plan.Update)[0].Name
	sc.event(corev1.EventTypeNormal, swarmv1.EventWaveWritten, "Wave %d of revision %s written: %s", sc.release[first].Wave, stack.ShortRev(cur.Revision), names)
}

// waitForWave: an ordered release has services left to write, and none may be written
// yet. Within a rollout judge follows it; before its first write (a dependency the
// release leaves as it is does not hold) the stack says what it waits for.
func (sc *stackScope) waitForWave(cur *swarmv1.HistoryEntry) error {
	sc.requeue(rolloutPoll)
	var waits []string
	for name, step := range sc.release {
		if step.State == swarmv1.ReleaseWaiting {
			waits = append(waits, name+" waits for "+step.WaitingFor)
		}
	}
	slices.Sort(waits)
	if cur != nil {
		if sc.running != nil && sc.running.Outcome == "" && len(waits) > 0 && sc.running.Message == waveDoneMessage {
			sc.running.Message = "the waves written so far are done; " + strings.Join(waits, "; ")
		}
		return nil
	}
	sc.waitingFirstWave = true
	sc.acted = &condFact{reason: swarmv1.ReasonProgressing, progressing: true,
		msg: fmt.Sprintf("Revision %s waits before its first wave: %s", stack.ShortRev(sc.rendered.Revision), strings.Join(waits, "; "))}
	return nil
}

// showRelease writes each service's wave and release state into status.services, from
// the services as this pass last read them. Without an ordered release the fields stay
// unset.
func (sc *stackScope) showRelease(ctx context.Context) {
	if !sc.ordered() || sc.s.Spec.Suspend {
		return
	}
	st := &sc.s.Status
	if sc.renderSkipped {
		// The revision in force, not rendered again: its waves are those the last render
		// found, and no release is in flight.
		waves := map[string]*int32{}
		for _, svc := range sc.servicesBefore {
			waves[svc.Name] = svc.Wave
		}
		for i := range st.Services {
			st.Services[i].Wave = waves[st.Services[i].Name]
		}
		return
	}
	cur := st.RolloutInFlight()
	svcs := sc.current
	if sc.after != nil {
		svcs = sc.after
	}
	jobs := sc.jobRuns(ctx)
	if sc.after != nil {
		jobs = stack.JobRuns(ctx, sc.conn, sc.after) // a job written now started a new run
	}
	if sc.release == nil || sc.after != nil {
		plan := sc.unwrittenPlan(cur, svcs)
		_, sc.release = stack.OrderRelease(sc.rendered, plan, svcs, cur, jobs)
	}
	for i := range st.Services {
		step, ok := sc.release[st.Services[i].Name]
		if !ok {
			continue
		}
		w := int32(step.Wave) //nolint:gosec // at most the stack's service count
		st.Services[i].Wave = &w
		if cur != nil || sc.waitingFirstWave {
			st.Services[i].Release, st.Services[i].WaitingFor = step.State, step.WaitingFor
		}
	}
}

// nothingToWrite: the swarm runs the rendered revision already.
func (sc *stackScope) nothingToWrite() error {
	s, st, rendered := sc.s, &sc.s.Status, sc.rendered
	if sc.retryRequest != "" {
		st.LastHandledRetry = sc.retryRequest
	}
	if st.RolloutInFlight() != nil {
		return nil // a rollout runs: judge follows it
	}
	if st.LastAttemptedRevision != rendered.Revision && rendered.Revision == st.LastAppliedRevision {
		// The spec is back on the revision in force, which a rollback (Swarm's, the
		// stack's or a requested one) has put back on the swarm already: a person undoing
		// a bad edit, a fleet's RollbackAll. There is no rollout to follow; following the
		// services' rollback states as one would judge the revision rolled back.
		st.LastAttemptedRevision = rendered.Revision
		sc.revisionInForce = true
	}
	if st.LastAttemptedRevision != rendered.Revision {
		if written, ok := stack.RevisionWrittenAt(sc.current, rendered.Revision); ok {
			// An earlier pass wrote this revision but its status was lost (a crash
			// between the two writes): follow that rollout instead of calling it done.
			st.LastAttemptedRevision = rendered.Revision
			st.History = stack.PushHistory(st.History, swarmv1.HistoryEntry{
				Revision: rendered.Revision, Version: s.Spec.Version, StartedAt: metav1.NewTime(written), Outcome: swarmv1.OutcomeProgressing,
				SourceRevision: sc.in.SourceRevision,
			})
			sc.acted = &condFact{reason: swarmv1.ReasonProgressing, msg: fmt.Sprintf("Rolling out revision %s", stack.ShortRev(rendered.Revision)), progressing: true}
			sc.requeue(stack.StartGrace)
			return nil
		}
		// Nothing on the swarm differs (for example a comment changed): the revision is in force.
		st.LastAttemptedRevision = rendered.Revision
		st.LastAppliedRevision = rendered.Revision
		sc.revisionInForce = true
	}
	if st.LastAppliedRevision == rendered.Revision {
		// A new source revision that renders the same stack is applied as it stands.
		st.LastAppliedSourceRevision = sc.in.SourceRevision
	}
	sc.requeue(reconcile.Jitter(sc.interval))
	return nil
}

// writtenBackOnlyOnRequest: after this outcome the same revision is written again only
// when the spec changes or a retry is requested.
func writtenBackOnlyOnRequest(outcome string) bool {
	return stack.FailedOutcome(outcome) || outcome == swarmv1.OutcomeRolledBackOnRequest
}

// cleanUp removes what the stack no longer uses (cleanUpStack), once the pass decided
// nothing else.
func (sc *stackScope) cleanUp(ctx context.Context) error {
	if sc.rendered == nil || sc.s.Spec.Suspend {
		return nil
	}
	return cleanUpStack(ctx, sc)
}

// summarize sets Ready, Reconciling and Stalled from the facts the steps found, in one
// place. The first fact that applies decides.
func (sc *stackScope) summarize() {
	s, st := sc.s, &sc.s.Status
	conds, gen := &st.Conditions, s.Generation
	note := func(f *condFact) string {
		if f == nil {
			return ""
		}
		return "; meanwhile " + f.msg
	}
	switch {
	case sc.blocked != nil:
		reconcile.MarkFailed(conds, gen, sc.blocked.reason, sc.blocked.msg, sc.blocked.stalled)
	case sc.acted != nil && !sc.acted.ready && !sc.acted.progressing && !sc.acted.stalled:
		// A write Swarm refused (retried) says more than the rollout it continues.
		apply(conds, gen, sc.acted)
	case sc.running != nil:
		cur := st.RolloutInFlight()
		waiting := sc.input
		if waiting == nil {
			waiting = sc.hold
		}
		reconcile.MarkReconciling(conds, gen, sc.running.Reason,
			fmt.Sprintf("Rolling out revision %s: %s%s", stack.ShortRev(cur.Revision), sc.running.Message, note(waiting)))
	case sc.acted != nil:
		apply(conds, gen, sc.acted)
	case sc.input != nil:
		apply(conds, gen, sc.input)
	case sc.hold != nil:
		apply(conds, gen, sc.hold)
	default:
		sc.summarizeSettled()
	}
}

// summarizeSettled: no rollout runs and the pass wrote nothing; the last outcome stands.
func (sc *stackScope) summarizeSettled() {
	s, st := sc.s, &sc.s.Status
	conds, gen := &st.Conditions, s.Generation
	last := stack.LastOutcome(st.History)
	switch {
	case sc.rendered == nil:
	case stack.FailedOutcome(last.Outcome) && last.Revision == st.LastAttemptedRevision:
		reconcile.MarkFailed(conds, gen, stack.OutcomeReason(last.Outcome),
			failedRevisionMessage(last), true)
	case s.Spec.Suspend:
		// Suspended, the conditions say what the last pass found, unless a rollout
		// ended in this one.
		if sc.stopped != nil && sc.stopped.Outcome == swarmv1.OutcomeCompleted {
			reconcile.MarkReady(conds, gen, swarmv1.ReasonSucceeded,
				fmt.Sprintf("Revision %s%s completed; the stack is suspended", stack.ShortRev(sc.stopped.Revision), stack.VersionSuffix(sc.stopped.Version)))
		}
	default:
		reconcile.MarkReady(conds, gen, swarmv1.ReasonSucceeded, readyMessage(s, sc.rendered))
	}
}

// failedRevisionMessage says how the last rollout of a revision that is not written
// again by itself ended.
func failedRevisionMessage(last swarmv1.HistoryEntry) string {
	return fmt.Sprintf("Revision %s %s: %s", stack.ShortRev(last.Revision), stack.OutcomeWords(last.Outcome), last.Message)
}

// apply writes one fact as the conditions.
func apply(conds *[]metav1.Condition, gen int64, f *condFact) {
	switch {
	case f.ready:
		reconcile.MarkReady(conds, gen, f.reason, f.msg)
	case f.progressing:
		reconcile.MarkReconciling(conds, gen, f.reason, f.msg)
	default:
		reconcile.MarkFailed(conds, gen, f.reason, f.msg, f.stalled)
	}
}

// logPass writes the pass's one log line: what it decided, for which revision, how long
// it took and when it runs next.
func (sc *stackScope) logPass(err error) {
	ready := sc.readyCondition()
	kv := []any{"revision", stack.ShortRev(sc.s.Status.LastAttemptedRevision), "duration", time.Since(sc.began).Round(time.Millisecond).String()}
	if ready != nil {
		kv = append(kv, "ready", string(ready.Status), "reason", ready.Reason)
	}
	if sc.renderSkipped {
		kv = append(kv, "render", "skipped: inputs unchanged")
	}
	if sc.readOnly {
		kv = append(kv, "read", "settled: from the informer cache")
	}
	if sc.result.RequeueAfter > 0 {
		kv = append(kv, "next", sc.result.RequeueAfter.Round(time.Millisecond).String())
	}
	if err != nil {
		sc.log.Error(err, "Reconcile failed", kv...)
		return
	}
	msg := "Reconciled"
	if ready != nil && ready.Status != metav1.ConditionTrue {
		msg = "Reconciled: " + ready.Message
	}
	sc.log.Info(msg, kv...)
}

func (sc *stackScope) readyCondition() *metav1.Condition {
	for i := range sc.s.Status.Conditions {
		if c := &sc.s.Status.Conditions[i]; c.Type == swarmv1.ConditionReady {
			return c
		}
	}
	return nil
}

// capWarnings keeps status.warnings within the API's bounds.
func capWarnings(ws []string) []string {
	const maxWarnings, maxLen = 20, 512
	out := make([]string, 0, min(len(ws), maxWarnings))
	for _, w := range ws {
		if len(out) == maxWarnings {
			break
		}
		if len(w) > maxLen {
			w = strings.ToValidUTF8(w[:maxLen-3], "") + "..."
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
