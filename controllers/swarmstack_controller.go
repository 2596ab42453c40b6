package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

const (
	stackFinalizer          = "swarm.swarmops.io/stack"
	defaultStackInterval    = 10 * time.Minute
	defaultProgressDeadline = 600 * time.Second
	// rolloutPoll re-reads a stack while its rollout runs. Service update states arrive as
	// events, but Swarm sends none when new tasks start running, which is what ends the
	// rollout of a new service: without this poll that end would wait for the resync.
	rolloutPoll = time.Second
	// rollbackRequested marks a history entry opened by the rollback annotation.
	rollbackRequested = "Rollback requested"
	// pruneRetry is when a failed removal of unused objects is tried again: often a
	// network still has a task of the old spec attached for a few seconds.
	pruneRetry = 30 * time.Second
)

// SwarmStackReconciler deploys compose stacks and reports their rollouts.
type SwarmStackReconciler struct {
	client.Client
	// APIReader reads the reconciled object itself, bypassing the cache.
	APIReader client.Reader
	// Hub streams the swarms' events (SetupWithManager); Swarms opens them.
	Hub      *swarm.Hub
	Swarms   Swarms
	Renderer *compose.Cache
	// NamingKey keys the hashes in secret and config names and in revisions, so that
	// names listed on the swarm do not let anyone confirm guesses of the data offline.
	NamingKey []byte
	Recorder  record.EventRecorder
	// Concurrent is how many stacks are reconciled at once.
	Concurrent int
	Now        func() time.Time
	// Sources reads the Flux sources of spec.sourceRef (stack_artifact.go).
	Sources Sources
}

// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch

// Reconcile brings the stack's services on the swarm to the rendered compose files.
func (r *SwarmStackReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return lifecycle[*swarmv1.SwarmStack]{
		client: r.Client, apiReader: r.APIReader, finalizer: stackFinalizer,
		newObject: func() *swarmv1.SwarmStack { return &swarmv1.SwarmStack{} },
		status:    func(s *swarmv1.SwarmStack) any { return s.Status },
		observed:  func(s *swarmv1.SwarmStack) { s.Status.ObservedGeneration = s.Generation },
		normal:    r.reconcileNormal,
		remove:    r.reconcileDelete,
	}.reconcile(ctx, req)
}

func stackNameOf(s *swarmv1.SwarmStack) string {
	if s.Spec.StackName != "" {
		return s.Spec.StackName
	}
	return s.Name
}

func ownerOf(s *swarmv1.SwarmStack) string { return s.Namespace + "." + s.Name }

// stackScope is the state of one reconcile of one SwarmStack; it lives for that pass
// only (the reconciler is shared by concurrent workers). Phases read what earlier phases
// found and decide before anything is written.
type stackScope struct {
	r         *SwarmStackReconciler
	s         *swarmv1.SwarmStack
	log       logr.Logger
	stackName string
	owner     string
	now       time.Time
	interval  time.Duration

	conn     swarm.Swarm
	in       *stackInputs
	rendered *compose.Stack
	current  []swarmtypes.Service
	redact   *redactor

	// Requests found on the object, acted on by later phases.
	rollbackRequest string // a new value of the rollback annotation
	retryRequest    string // a new value of the retry annotation
	// rolledBack names the services this pass asked Swarm to roll back.
	rolledBack map[string]bool
	// revisionInForce: this pass saw the rendered revision take effect (its rollout
	// completed, or nothing on the swarm differed): what it replaced may now be unused.
	revisionInForce bool

	result ctrl.Result
}

// stackPhase is one step of a pass; stop ends the pass after it.
type stackPhase func(ctx context.Context, sc *stackScope) (stop bool, err error)

// stackPhases run in this order: observe the stack and the swarm; take the requests and
// suspend into account; follow the rollout in flight; act on a rollback request; hold a
// new revision while a gate says so; apply the revision; clean up.
var stackPhases = []stackPhase{observeStack, takeRequests, followRollout, rollBackOnRequest, holdNewRevision, applyRevision, cleanUpStack}

func (r *SwarmStackReconciler) reconcileNormal(ctx context.Context, s *swarmv1.SwarmStack) (ctrl.Result, error) {
	sc := &stackScope{
		r: r, s: s, log: ctrl.LoggerFrom(ctx), stackName: stackNameOf(s), owner: ownerOf(s), now: r.Now(),
		interval: durationOr(s.Spec.Interval, defaultStackInterval), redact: &redactor{},
	}
	var err error
	for _, phase := range stackPhases {
		var stop bool
		if stop, err = phase(ctx, sc); stop || err != nil {
			break
		}
	}
	// Whatever a phase wrote into status, events or the returned error went through here.
	sc.redact.status(&s.Status)
	return sc.result, sc.redact.err(err)
}

func (sc *stackScope) requeue(d time.Duration) {
	if sc.result.RequeueAfter == 0 || d < sc.result.RequeueAfter {
		sc.result.RequeueAfter = d
	}
}

func (sc *stackScope) event(typ, reason, format string, args ...any) {
	sc.r.Recorder.Event(sc.s, typ, reason, sc.redact.text(fmt.Sprintf(format, args...)))
}

func (sc *stackScope) failed(reason, msg string, stalled bool) {
	markFailed(&sc.s.Status.Conditions, sc.s.Generation, reason, msg, stalled)
}

func (sc *stackScope) reconciling(reason, msg string) {
	markReconciling(&sc.s.Status.Conditions, sc.s.Generation, reason, msg)
}

// observeStack reads everything the pass decides on: the cluster, the inputs, the
// rendered revision and the stack's services. It writes nothing.
func observeStack(ctx context.Context, sc *stackScope) (bool, error) {
	s, st := sc.s, &sc.s.Status
	newer, older, err := sc.r.rivals(ctx, s, sc.stackName)
	if err != nil {
		return true, err
	}
	if older != "" {
		sc.failed(swarmv1.ReasonConflict,
			fmt.Sprintf("SwarmStack %s already manages stack %q on cluster %q", older, sc.stackName, s.Spec.ClusterRef.Name), true)
		return true, nil
	}
	if sc.conn, err = sc.r.connect(ctx, s); err != nil {
		sc.failed(swarmv1.ReasonClusterNotReady, err.Error(), false)
		sc.requeue(30 * time.Second) // the cluster watch usually brings us back first
		return true, nil
	}
	sc.in, err = gatherInputsFrom(ctx, sc.r.Client, sc.r.Sources, s, sc.stackName)
	if sc.in != nil {
		sc.redact.add(sc.in.sensitive...)
	}
	if errors.Is(err, errSourceNotReady) {
		// The source watch brings us back when its artifact changes; what runs stays.
		sc.failed(swarmv1.ReasonSourceNotReady, err.Error(), false)
		sc.requeue(sourceRecheck)
		return true, nil
	}
	if err != nil {
		if errors.Is(err, errSourceMissing) {
			// The ConfigMap and Secret watches bring us back when it appears.
			sc.failed(swarmv1.ReasonSourceNotFound, err.Error(), false)
			return true, nil
		}
		sc.failed(swarmv1.ReasonComposeInvalid, err.Error(), true)
		return true, nil
	}
	sc.in.opts.NameKey = sc.r.NamingKey
	if sc.rendered, err = sc.r.Renderer.Render(sc.in.files, sc.in.opts); err != nil {
		msg := sc.redact.text(err.Error())
		if !isReadyWithReason(st.Conditions, swarmv1.ReasonComposeInvalid, msg) {
			sc.event(corev1.EventTypeWarning, swarmv1.ReasonComposeInvalid, "%s", msg)
		}
		sc.failed(swarmv1.ReasonComposeInvalid, msg, true)
		return true, reconcile.TerminalError(errors.New(msg))
	}
	sc.noteWarnings(sc.rendered.Warnings)
	if sc.current, err = sc.conn.StackServices(ctx, sc.stackName); err != nil {
		sc.failed(swarmv1.ReasonClusterNotReady, "Reading the stack's services: "+err.Error(), false)
		sc.requeue(10 * time.Second)
		return true, nil //nolint:nilerr // reported in status; retried on a timer
	}
	if reason, msg := ownershipProblem(sc.current, sc.owner, s.Spec.Adopt, newer); reason != "" {
		sc.failed(reason, msg, true)
		return true, nil
	}
	before := st.Services
	st.Services = serviceStatuses(sc.current, exactTaskCounts(ctx, sc.conn, sc.current))
	recordServiceStates(s, before, st.Services)
	return false, nil
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

// takeRequests notes the imperative requests; with suspend set it only follows the
// rollout in flight, read-only, and ends the pass: nothing is written.
func takeRequests(ctx context.Context, sc *stackScope) (bool, error) {
	s, st := sc.s, &sc.s.Status
	if v := s.Annotations[swarmv1.AnnotationReconcileRequestedAt]; v != "" {
		st.LastHandledReconcileAt = v
	}
	if s.Spec.Suspend {
		sc.log.V(1).Info("Suspended: leaving the swarm as it is")
		if cur := inFlight(st.History); cur != nil {
			if v := sc.judgeRollout(ctx, cur); v.outcome != "" {
				sc.finishRollout(cur, v)
			}
		}
		sc.requeue(jitter(sc.interval))
		return true, nil
	}
	if v := s.Annotations[swarmv1.AnnotationRollback]; v != "" && v != st.LastHandledRollback {
		sc.rollbackRequest = v
	}
	if v := s.Annotations[swarmv1.AnnotationRetry]; v != "" && v != st.LastHandledRetry {
		sc.retryRequest = v
	}
	return false, nil
}

// followRollout judges the rollout in flight. A new revision or a rollback request
// supersedes it at once, as kubectl apply does to a Deployment mid-rollout; otherwise
// the pass waits for it to end.
func followRollout(ctx context.Context, sc *stackScope) (bool, error) {
	st := &sc.s.Status
	cur := inFlight(st.History)
	if cur == nil {
		return false, nil
	}
	if sc.rollbackRequest != "" || sc.rendered.Revision != cur.Revision || sc.retryRequest != "" {
		sc.finishRollout(cur, rolloutVerdict{outcome: swarmv1.OutcomeSuperseded, reason: swarmv1.ReasonProgressing, message: supersededBy(sc)})
		return false, nil
	}
	verdict := sc.judgeRollout(ctx, cur)
	deadline := defaultProgressDeadline
	if sc.s.Spec.ProgressDeadlineSeconds != nil {
		deadline = time.Duration(*sc.s.Spec.ProgressDeadlineSeconds) * time.Second
	}
	if verdict.outcome == "" && sc.now.Sub(cur.StartedAt.Time) > deadline {
		verdict = sc.onDeadline(ctx, cur.Revision, deadline)
	}
	if verdict.outcome == "" {
		if verdict.rollbackCause != "" {
			// Swarm says why it rolls back only while it does; keep it for history.
			cur.Message = verdict.rollbackCause
		}
		sc.reconciling(verdict.reason, fmt.Sprintf("Rolling out revision %s: %s", shortRev(cur.Revision), verdict.message))
		sc.requeue(rolloutPoll)
		return true, nil
	}
	if verdict.outcome == swarmv1.OutcomeRolledBack {
		verdict.message += failedTaskCause(ctx, sc.conn, sc.current, cur.StartedAt.Time)
	}
	if failedOutcome(verdict.outcome) && sc.s.Spec.RollbackPolicy == swarmv1.RollbackPolicyStack {
		sc.rollBackRevision(ctx, cur, &verdict)
	}
	sc.finishRollout(cur, verdict)
	return false, nil
}

// judgeRollout judges the rollout in flight on the services read in this pass.
func (sc *stackScope) judgeRollout(ctx context.Context, cur *swarmv1.HistoryEntry) rolloutVerdict {
	started := cur.StartedAt.Time
	return judgeRollout(sc.current, started, sc.now, awaitingUpdater(ctx, sc.conn, sc.current, started, sc.now))
}

// rollBackRevision puts every service that the failed revision wrote back to its spec of
// the last completed revision (rollbackPolicy Stack). Swarm rolls back one service at a
// time and knows no stack: without this a failed release ends half applied. Services
// the revision created are removed; with no completed revision to go back to, they stay.
func (sc *stackScope) rollBackRevision(ctx context.Context, cur *swarmv1.HistoryEntry, v *rolloutVerdict) {
	last := sc.s.Status.LastAppliedRevision
	var back, removed, failed []string
	for _, svc := range sc.current {
		name := svc.Spec.Name
		if svc.Spec.Labels[swarmv1.LabelOwner] != sc.owner {
			continue
		}
		if u := svc.UpdateStatus; u != nil && rollingBackSince(u, cur.StartedAt.Time) || sc.rolledBack[svc.ID] {
			back = append(back, name) // Swarm, or the deadline, is already rolling it back
			continue
		}
		if svc.Spec.Labels[swarmv1.LabelRevision] != cur.Revision {
			continue // not changed by this revision
		}
		switch prev := svc.PreviousSpec; {
		case prev == nil && last == "":
			failed = append(failed, name+": no completed revision to go back to")
		case prev == nil:
			if err := sc.conn.RemoveService(ctx, svc.ID); err != nil {
				failed = append(failed, fmt.Sprintf("%s: removing it failed: %v", name, err))
				continue
			}
			removed = append(removed, name)
		case prev.Labels[swarmv1.LabelRevision] != last:
			failed = append(failed, fmt.Sprintf("%s: its previous spec is not revision %s", name, shortRev(last)))
		default:
			if err := sc.conn.RollbackService(ctx, svc.ID, svc.Version); err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			back = append(back, name)
		}
	}
	slices.Sort(back)
	cur.RolledBackServices = slices.Concat(back, removed)
	msg := "; the stack rolled back to revision " + shortRev(last)
	if len(back) > 0 {
		msg += ": " + strings.Join(back, ", ")
	}
	if len(removed) > 0 {
		msg += "; removed, as the revision created them: " + strings.Join(removed, ", ")
	}
	v.outcome, v.reason = swarmv1.OutcomeRolledBack, swarmv1.ReasonRolledBack
	if len(failed) > 0 {
		msg += "; not rolled back: " + strings.Join(failed, "; ")
		v.outcome, v.reason = swarmv1.OutcomeRollbackFailed, swarmv1.ReasonRollbackFailed
	}
	v.message += msg
	sc.event(corev1.EventTypeWarning, swarmv1.EventStackRolledBack, "Revision %s failed%s", shortRev(cur.Revision), msg)
}

// rollingBackSince: Swarm has been rolling the service back since the rollout started.
func rollingBackSince(u *swarmtypes.UpdateStatus, started time.Time) bool {
	switch u.State {
	case swarmtypes.UpdateStateRollbackStarted, swarmtypes.UpdateStateRollbackCompleted, swarmtypes.UpdateStateRollbackPaused:
		return u.StartedAt == nil || !u.StartedAt.Before(started.Add(-clockSkew))
	}
	return false
}

func supersededBy(sc *stackScope) string {
	switch {
	case sc.rollbackRequest != "":
		return "Superseded by a rollback request"
	case sc.retryRequest != "":
		return "Superseded by a retry request"
	}
	return "Superseded by revision " + shortRev(sc.rendered.Revision)
}

// rollBackOnRequest acts on a new rollback annotation. The request counts as handled
// only once every service's rollback was written; the others are retried, so a partly
// failed rollback never lets the next pass write the new spec back.
func rollBackOnRequest(ctx context.Context, sc *stackScope) (bool, error) {
	if sc.rollbackRequest == "" {
		return false, nil
	}
	s, st := sc.s, &sc.s.Status
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
		if cur := inFlight(st.History); cur == nil || cur.Message != rollbackRequested {
			st.History = pushHistory(st.History, swarmv1.HistoryEntry{
				Revision: st.LastAttemptedRevision, Version: s.Spec.Version, StartedAt: metav1.NewTime(sc.now),
				Outcome: swarmv1.OutcomeProgressing, Message: rollbackRequested,
			})
		}
		sc.event(corev1.EventTypeNormal, swarmv1.EventRollbackRequested, "Rolling back %s to their previous specs", strings.Join(rolled, ", "))
	}
	if err := errors.Join(errs...); err != nil {
		sc.failed(swarmv1.ReasonRollbackFailed, "Rollback failed, retrying: "+err.Error(), false)
		return true, err
	}
	st.LastHandledRollback = sc.rollbackRequest
	if len(rolled) == 0 && inFlight(st.History) == nil {
		sc.event(corev1.EventTypeWarning, swarmv1.EventRollbackSkipped, "No service of the stack has a previous spec to roll back to")
		sc.requeue(startGrace)
		return true, nil
	}
	sc.reconciling(swarmv1.ReasonRollingBack, "Rolling back "+strings.Join(rolled, ", "))
	sc.requeue(startGrace)
	return true, nil
}

// applyRevision writes what differs between the rendered revision and the swarm.
func applyRevision(ctx context.Context, sc *stackScope) (bool, error) {
	s, st, gen, rendered := sc.s, &sc.s.Status, sc.s.Generation, sc.rendered
	retry := sc.retryRequest != ""
	// No rollback loop: a revision that failed is not written again by itself.
	if last := lastOutcome(st.History); !retry && rendered.Revision == st.LastAttemptedRevision && failedOutcome(last.Outcome) {
		sc.failed(outcomeReason(last.Outcome),
			fmt.Sprintf("Revision %s %s: %s", shortRev(last.Revision), outcomeWords(last.Outcome), last.Message), true)
		sc.requeue(jitter(sc.interval))
		return true, nil
	}
	// With rollbackPolicy Stack a service the revision drops goes only once the revision
	// completed: a stack rollback must find it.
	plan := planServices(rendered, sc.current, sc.owner, pruneEnabled(s) && s.Spec.RollbackPolicy != swarmv1.RollbackPolicyStack, retry)
	if plan.empty() {
		if retry {
			st.LastHandledRetry = sc.retryRequest
		}
		if st.LastAttemptedRevision != rendered.Revision {
			st.LastAttemptedRevision = rendered.Revision
			if written, ok := revisionWrittenAt(sc.current, rendered.Revision); ok {
				// An earlier pass wrote this revision but its status was lost (a crash
				// between the two writes): follow that rollout instead of calling it done.
				st.History = pushHistory(st.History, swarmv1.HistoryEntry{
					Revision: rendered.Revision, Version: s.Spec.Version, StartedAt: metav1.NewTime(written), Outcome: swarmv1.OutcomeProgressing,
					SourceRevision: sc.in.sourceRevision,
				})
				sc.reconciling(swarmv1.ReasonProgressing, fmt.Sprintf("Rolling out revision %s", shortRev(rendered.Revision)))
				sc.requeue(startGrace)
				return true, nil
			}
			// Nothing on the swarm differs (for example a comment changed): the revision is in force.
			st.LastAppliedRevision = rendered.Revision
			sc.revisionInForce = true
		}
		if st.LastAppliedRevision == rendered.Revision {
			// A new source revision that renders the same stack is applied as it stands.
			st.LastAppliedSourceRevision = sc.in.sourceRevision
		}
		markReady(&st.Conditions, gen, swarmv1.ReasonSucceeded, readyMessage(s, rendered))
		sc.requeue(jitter(sc.interval))
		return false, nil
	}

	for _, name := range plan.drifted {
		sc.event(corev1.EventTypeWarning, swarmv1.EventDriftCorrected, "Service %s was changed outside the operator; restoring revision %s", name, shortRev(rendered.Revision))
	}
	queryRegistry := queryRegistryFor(s, rendered.Revision)
	sc.log.Info("Applying stack", "revision", rendered.Revision, "create", len(plan.create), "update", len(plan.update), "remove", len(plan.prune))
	warnings, err := applyStack(ctx, sc.conn, rendered, sc.in, plan, sc.current, sc.owner, rendered.Revision, queryRegistry)
	sc.addWarnings(warnings)
	if err != nil {
		sc.event(corev1.EventTypeWarning, swarmv1.ReasonApplyFailed, "%s", err.Error())
		sc.failed(swarmv1.ReasonApplyFailed, err.Error(), false)
		return true, err
	}
	newRollout := rendered.Revision != st.LastAttemptedRevision || retry
	st.LastAttemptedRevision = rendered.Revision
	if retry {
		st.LastHandledRetry = sc.retryRequest
	}
	if newRollout || len(plan.create)+len(plan.update) > 0 && inFlight(st.History) == nil {
		started := sc.now
		// A revision partly written by an earlier pass (a refused write, a restart) started
		// then: its services' update states since that write belong to this rollout.
		if written, ok := revisionWrittenAt(sc.current, rendered.Revision); ok && written.Before(started) && !retry {
			started = written
		}
		st.History = pushHistory(st.History, swarmv1.HistoryEntry{
			Revision: rendered.Revision, Version: s.Spec.Version, StartedAt: metav1.NewTime(started), Outcome: swarmv1.OutcomeProgressing,
			SourceRevision: sc.in.sourceRevision,
		})
		metrics.RolloutsStarted.WithLabelValues(s.Namespace, s.Name).Inc()
		sc.event(corev1.EventTypeNormal, swarmv1.EventRolloutStarted, "Rolling out revision %s%s: %d created, %d updated, %d removed",
			shortRev(rendered.Revision), versionSuffix(s.Spec.Version), len(plan.create), len(plan.update), len(plan.prune))
	}
	if after, err := sc.conn.StackServices(ctx, sc.stackName); err == nil {
		st.Services = serviceStatuses(after, exactTaskCounts(ctx, sc.conn, after))
	}
	sc.reconciling(swarmv1.ReasonProgressing, fmt.Sprintf("Rolling out revision %s", shortRev(rendered.Revision)))
	sc.requeue(startGrace)
	return true, nil
}

// cleanUpStack removes the networks, secrets and configs the stack no longer uses, when
// its revision took effect in this pass (only a write of the operator's makes something
// unused) or an earlier prune failed (condition Pruned=False). A pass with nothing to do
// therefore lists nothing more than the stack's services.
func cleanUpStack(ctx context.Context, sc *stackScope) (bool, error) {
	st := &sc.s.Status
	retry := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionPruned) != nil
	if !pruneEnabled(sc.s) {
		meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionPruned)
		return false, nil
	}
	if !sc.revisionInForce && !retry || st.LastAppliedRevision != sc.rendered.Revision || inFlight(st.History) != nil {
		return false, nil
	}
	var errs []error
	if sc.s.Spec.RollbackPolicy == swarmv1.RollbackPolicyStack {
		for _, svc := range planServices(sc.rendered, sc.current, sc.owner, true, false).prune {
			if err := sc.conn.RemoveService(ctx, svc.ID); err != nil {
				errs = append(errs, fmt.Errorf("removing service %s: %w", svc.Spec.Name, err))
			}
		}
	}
	if err := pruneUnused(ctx, sc.conn, sc.rendered, sc.current, sc.owner); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		msg := sc.redact.text(err.Error())
		sc.log.Info("Removing what the stack no longer uses failed, will retry", "error", msg)
		if !retry {
			sc.event(corev1.EventTypeWarning, swarmv1.ReasonPruneFailed, "Removing what revision %s no longer uses: %s; retrying", shortRev(sc.rendered.Revision), msg)
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: swarmv1.ConditionPruned, Status: metav1.ConditionFalse, ObservedGeneration: sc.s.Generation,
			Reason: swarmv1.ReasonPruneFailed, Message: msg,
		})
		sc.requeue(pruneRetry)
		return false, nil
	}
	meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionPruned)
	return false, nil
}

func pruneEnabled(s *swarmv1.SwarmStack) bool { return s.Spec.Prune == nil || *s.Spec.Prune }

func (r *SwarmStackReconciler) connect(ctx context.Context, s *swarmv1.SwarmStack) (swarm.Swarm, error) {
	var cluster swarmv1.SwarmCluster
	if err := r.Get(ctx, ktypes.NamespacedName{Namespace: s.Namespace, Name: s.Spec.ClusterRef.Name}, &cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %q", errClusterGone, s.Spec.ClusterRef.Name)
		}
		return nil, err
	}
	if err := clusterNotReady(&cluster); err != nil {
		return nil, err
	}
	conn, err := r.Swarms.Open(ctx, r.Client, &cluster)
	if err != nil {
		return nil, fmt.Errorf("SwarmCluster %q: %w", cluster.Name, err)
	}
	return conn, nil
}

// rivals lists the other SwarmStacks that target the same stack on the same cluster:
// older is the oldest one older than s (it wins, so the outcome does not depend on which
// reconciles first), newer the owner values of the younger ones, whose services s may take
// back.
func (r *SwarmStackReconciler) rivals(ctx context.Context, s *swarmv1.SwarmStack, stackName string) (newer map[string]bool, older string, err error) {
	var list swarmv1.SwarmStackList
	// Read-only: no need to deep-copy every stack of the cluster on each reconcile.
	// By cluster and stack name: the rivals only, not every stack of the cluster.
	if err := r.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingFields{indexClusterStack: clusterStackKey(s)}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, "", err
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == s.Name || stackNameOf(o) != stackName {
			continue
		}
		if olderStack(o, s) {
			if o.DeletionTimestamp.IsZero() && (older == "" || o.Name < older) {
				older = o.Name
			}
			continue
		}
		if newer == nil {
			newer = map[string]bool{}
		}
		newer[ownerOf(o)] = true
	}
	return newer, older, nil
}

func olderStack(a, b *swarmv1.SwarmStack) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// ownershipProblem explains why the stack's existing services may not be touched. The
// services of a younger SwarmStack for the same stack are taken back: it is refused
// anyway, and otherwise the two would refuse each other forever.
func ownershipProblem(current []swarmtypes.Service, owner string, adopt bool, newer map[string]bool) (reason, msg string) {
	for _, svc := range current {
		switch o := svc.Spec.Labels[swarmv1.LabelOwner]; {
		case o == owner, newer[o]:
		case o != "":
			return swarmv1.ReasonConflict, fmt.Sprintf("Service %s belongs to SwarmStack %s", svc.Spec.Name, o)
		case !adopt:
			return swarmv1.ReasonNotOwned, fmt.Sprintf("Service %s exists and was not created by the operator: set spec.adopt to take the stack over", svc.Spec.Name)
		}
	}
	return "", ""
}

// onDeadline applies onProgressDeadline to a rollout that ran too long.
func (sc *stackScope) onDeadline(ctx context.Context, revision string, deadline time.Duration) rolloutVerdict {
	msg := fmt.Sprintf("Rollout still running after %s", deadline)
	switch sc.s.Spec.OnProgressDeadline {
	case "", "Rollback":
		var rolled []string
		for _, svc := range sc.current {
			if stillUpdating(svc, revision) {
				if err := sc.conn.RollbackService(ctx, svc.ID, svc.Version); err != nil {
					msg += fmt.Sprintf("; rollback of %s failed: %v", svc.Spec.Name, err)
					continue
				}
				if sc.rolledBack == nil {
					sc.rolledBack = map[string]bool{}
				}
				sc.rolledBack[svc.ID] = true
				rolled = append(rolled, svc.Spec.Name)
			}
		}
		if len(rolled) > 0 {
			msg += "; rolling back " + strings.Join(rolled, ", ")
		}
	case "Pause":
		// Swarm has no call that pauses an update in flight: the operator stops writing
		// to the stack until its spec changes or a retry is requested.
		msg += "; the operator stopped writing to the stack"
	}
	return rolloutVerdict{outcome: swarmv1.OutcomeDeadlineExceeded, reason: swarmv1.ReasonDeadlineExceeded, message: msg}
}

// failedTaskCause names why the newest failed task of a rolled back service failed:
// Swarm's own message ("rollback completed") no longer says. The first such service, in
// the stack's order, is named; the tasks of all of them come in one list.
func failedTaskCause(ctx context.Context, conn swarm.Swarm, services []swarmtypes.Service, since time.Time) string {
	var ids []string
	for _, svc := range services {
		if svc.UpdateStatus != nil && svc.UpdateStatus.State == swarmtypes.UpdateStateRollbackCompleted {
			ids = append(ids, svc.ID)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	tasks, err := conn.TasksOfServices(ctx, ids)
	if err != nil {
		return ""
	}
	newest := map[string]*swarmtypes.Task{}
	for i := range tasks {
		t := &tasks[i]
		if t.Status.Err == "" || t.CreatedAt.Before(since.Add(-clockSkew)) {
			continue
		}
		if n := newest[t.ServiceID]; n == nil || t.Status.Timestamp.After(n.Status.Timestamp) {
			newest[t.ServiceID] = t
		}
	}
	for _, svc := range services {
		if t := newest[svc.ID]; t != nil {
			return fmt.Sprintf("; a new task of %s failed: %s", svc.Spec.Name, t.Status.Err)
		}
	}
	return ""
}

// revisionWrittenAt tells whether some service was written at this revision and when its
// update started (the write time when Swarm has not started it yet).
func revisionWrittenAt(services []swarmtypes.Service, revision string) (time.Time, bool) {
	var at time.Time
	found := false
	for _, svc := range services {
		if svc.Spec.Labels[swarmv1.LabelRevision] != revision {
			continue
		}
		t := svc.UpdatedAt
		if u := svc.UpdateStatus; u != nil && u.StartedAt != nil {
			t = *u.StartedAt
		}
		if !found || t.Before(at) {
			at, found = t, true
		}
	}
	return at, found
}

// stillUpdating is true for a service written in this rollout whose update Swarm has not
// finished (or not yet started).
func stillUpdating(svc swarmtypes.Service, revision string) bool {
	if svc.Spec.Labels[swarmv1.LabelRevision] != revision || svc.PreviousSpec == nil {
		return false
	}
	if svc.UpdateStatus == nil {
		return !converged(svc)
	}
	return svc.UpdateStatus.State == swarmtypes.UpdateStateUpdating
}

// finishRollout records a rollout's end in history, conditions and events.
func (sc *stackScope) finishRollout(cur *swarmv1.HistoryEntry, v rolloutVerdict) {
	s, now := sc.s, sc.now
	t := metav1.NewTime(now)
	cur.FinishedAt = &t
	cur.Outcome = v.outcome
	switch {
	case cur.Message == "" || v.outcome == swarmv1.OutcomeCompleted && cur.Message != rollbackRequested:
		cur.Message = v.message
	case v.outcome == swarmv1.OutcomeRolledBack && !strings.Contains(cur.Message, v.message):
		cur.Message += "; " + v.message
	}
	defer func() {
		metrics.RolloutsFinished.WithLabelValues(s.Namespace, s.Name, cur.Outcome).Inc()
		metrics.RolloutDuration.WithLabelValues(cur.Outcome).Observe(now.Sub(cur.StartedAt.Time).Seconds())
	}()
	if v.outcome == swarmv1.OutcomeCompleted && cur.Message != rollbackRequested {
		s.Status.LastAppliedRevision = cur.Revision
		sc.revisionInForce = true
		s.Status.LastAppliedSourceRevision = cur.SourceRevision
		sc.event(corev1.EventTypeNormal, swarmv1.EventRolloutCompleted, "Revision %s%s completed", shortRev(cur.Revision), versionSuffix(cur.Version))
		return
	}
	if v.outcome == swarmv1.OutcomeSuperseded {
		sc.event(corev1.EventTypeNormal, swarmv1.EventRolloutSuperseded, "Revision %s%s: %s", shortRev(cur.Revision), versionSuffix(cur.Version), cur.Message)
		return
	}
	sc.event(corev1.EventTypeWarning, outcomeReason(cur.Outcome), "Revision %s%s %s: %s",
		shortRev(cur.Revision), versionSuffix(cur.Version), outcomeWords(cur.Outcome), cur.Message)
}

// recordServiceStates exports each service's update state. The series the stack set
// before are deleted by their labels: a partial-match delete scans every series of
// every stack.
func recordServiceStates(s *swarmv1.SwarmStack, before, services []swarmv1.ServiceStatus) {
	for _, svc := range before {
		state := svc.UpdateState
		if state == "" {
			state = "none"
		}
		metrics.ServiceUpdateState.DeleteLabelValues(s.Namespace, s.Name, svc.Name, state)
	}
	for _, svc := range services {
		state := svc.UpdateState
		if state == "" {
			state = "none"
		}
		metrics.ServiceUpdateState.WithLabelValues(s.Namespace, s.Name, svc.Name, state).Set(1)
	}
}

func lastOutcome(h []swarmv1.HistoryEntry) swarmv1.HistoryEntry {
	if len(h) == 0 {
		return swarmv1.HistoryEntry{}
	}
	return h[0]
}

func outcomeWords(outcome string) string {
	switch outcome {
	case swarmv1.OutcomeRolledBack:
		return "was rolled back"
	case swarmv1.OutcomePaused:
		return "is paused"
	case swarmv1.OutcomeRollbackPaused:
		return "paused while rolling back"
	case swarmv1.OutcomeDeadlineExceeded:
		return "exceeded its progress deadline"
	case swarmv1.OutcomeFailed:
		return "failed"
	case swarmv1.OutcomeSuperseded:
		return "was superseded"
	}
	return "completed"
}

func versionSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " (" + v + ")"
}

func readyMessage(s *swarmv1.SwarmStack, rendered *compose.Stack) string {
	return fmt.Sprintf("Revision %s%s applied: %d services", shortRev(rendered.Revision), versionSuffix(s.Spec.Version), len(rendered.Services))
}

func isReadyWithReason(conds []metav1.Condition, reason, msg string) bool {
	for _, c := range conds {
		if c.Type == swarmv1.ConditionReady {
			return c.Reason == reason && c.Message == msg
		}
	}
	return false
}

// reconcileDelete removes what the stack owns from the swarm. When the SwarmCluster or
// its TLS Secret is gone (a namespace being deleted removes them too), nothing can reach
// that swarm any more: the stack is orphaned, loudly, instead of blocking the deletion
// forever. A cluster that exists but does not answer is waited for; deletionPolicy
// Orphan lets the resource go at once.
func (r *SwarmStackReconciler) reconcileDelete(ctx context.Context, s *swarmv1.SwarmStack) (ctrl.Result, bool, error) {
	result, done, err := r.removeFromSwarm(ctx, s)
	if done {
		labels := prometheus.Labels{"namespace": s.Namespace, "stack": s.Name}
		metrics.ServiceUpdateState.DeletePartialMatch(labels)
		metrics.StackRevisionHeld.DeletePartialMatch(labels)
	}
	return result, done, err
}

func (r *SwarmStackReconciler) removeFromSwarm(ctx context.Context, s *swarmv1.SwarmStack) (ctrl.Result, bool, error) {
	if s.Spec.DeletionPolicy == "Orphan" {
		return ctrl.Result{}, true, nil
	}
	conn, err := r.connect(ctx, s)
	if errors.Is(err, errClusterGone) || errors.Is(err, errSecretNotFound) {
		r.Recorder.Eventf(s, corev1.EventTypeWarning, swarmv1.EventStackOrphaned,
			"Stack %s stays on the swarm as it is: %v", stackNameOf(s), err)
		return ctrl.Result{}, true, nil
	}
	if err != nil {
		markFailed(&s.Status.Conditions, s.Generation, swarmv1.ReasonClusterNotReady,
			"Removing the stack: "+err.Error()+"; set spec.deletionPolicy to Orphan to leave it on the swarm", false)
		return ctrl.Result{RequeueAfter: 10 * time.Second}, false, nil //nolint:nilerr // reported in status; retried on a timer
	}
	remaining, err := removeStack(ctx, conn, stackNameOf(s), ownerOf(s))
	if err != nil {
		return ctrl.Result{}, false, err
	}
	if remaining > 0 {
		return ctrl.Result{RequeueAfter: time.Second}, false, nil
	}
	r.Recorder.Eventf(s, corev1.EventTypeNormal, swarmv1.EventStackRemoved, "Removed stack %s from the swarm", stackNameOf(s))
	return ctrl.Result{}, true, nil
}

// SetupWithManager watches SwarmStacks, what they reference, and the swarm's events.
func (r *SwarmStackReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	for _, indexes := range []map[string]client.IndexerFunc{stackIndexes, stackSourceIndexes} {
		for name, fn := range indexes {
			if err := idx.IndexField(ctx, &swarmv1.SwarmStack{}, name, fn); err != nil {
				return err
			}
		}
	}

	swarmEvents := make(chan event.GenericEvent, 4096)
	r.Hub.Subscribe(func(ev swarm.Event) {
		if ev.Type != events.ServiceEventType || ev.Disconnected {
			return
		}
		for _, key := range r.stacksOfService(context.Background(), ev.Cluster, ev.Attributes["name"]) {
			sendNonBlocking(swarmEvents, &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		For(&swarmv1.SwarmStack{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Metadata only: the cluster's Secrets and ConfigMaps are not cached whole (see
		// ManagerOptions); a reconcile reads the few it needs.
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(indexConfigMaps)), builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(indexSecrets)), builder.OnlyMetadata).
		Watches(&swarmv1.SwarmCluster{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(indexClusterRef)),
			builder.WithPredicates(clusterUsable)).
		WatchesRawSource(source.Channel(swarmEvents, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrent, 1)})
	// Flux sources (new artifacts) and dependencies (turning Ready): stack_artifact.go.
	return r.watchSources(mgr, b).
		Named("swarmstack").
		Complete(r)
}

// stackIndexes map a SwarmStack to what it references, so that a change to a cluster,
// ConfigMap or Secret finds its users without a scan.
var stackIndexes = map[string]client.IndexerFunc{
	indexClusterStack: func(o client.Object) []string { return []string{clusterStackKey(o.(*swarmv1.SwarmStack))} },
	indexClusterRef:   func(o client.Object) []string { return []string{o.(*swarmv1.SwarmStack).Spec.ClusterRef.Name} },
	indexConfigMaps: func(o client.Object) []string {
		s := o.(*swarmv1.SwarmStack)
		var names []string
		for _, f := range s.Spec.Compose.Files {
			if f.ConfigMapRef != nil {
				names = append(names, f.ConfigMapRef.Name)
			}
		}
		for _, v := range s.Spec.Compose.VariablesFrom {
			if v.ConfigMapRef != nil {
				names = append(names, v.ConfigMapRef.Name)
			}
		}
		for _, c := range s.Spec.Configs {
			names = append(names, c.ConfigMapRef.Name)
		}
		return names
	},
	indexSecrets: func(o client.Object) []string {
		s := o.(*swarmv1.SwarmStack)
		var names []string
		for _, v := range s.Spec.Compose.VariablesFrom {
			if v.SecretRef != nil {
				names = append(names, v.SecretRef.Name)
			}
		}
		for _, sec := range s.Spec.Secrets {
			names = append(names, sec.SecretRef.Name)
		}
		if s.Spec.RegistryAuth != nil {
			names = append(names, s.Spec.RegistryAuth.SecretRef.Name)
		}
		return names
	},
}

// stacksOfService names the SwarmStacks that a service of a cluster may belong to. Stack
// deploy names a service <stack>_<service>, and a stack name may hold "_" itself, so each
// prefix before an "_" is looked up in the cluster+stack index: a few lookups per event
// whatever the number of stacks on the cluster. Ambiguous names wake every candidate.
func (r *SwarmStackReconciler) stacksOfService(ctx context.Context, cluster ktypes.NamespacedName, service string) []ktypes.NamespacedName {
	var out []ktypes.NamespacedName
	for i := 1; i < len(service); i++ {
		if service[i] != '_' {
			continue
		}
		var list swarmv1.SwarmStackList
		if err := r.List(ctx, &list, client.InNamespace(cluster.Namespace), client.MatchingFields{indexClusterStack: clusterStackIndexKey(cluster.Name, service[:i])}, client.UnsafeDisableDeepCopy); err != nil {
			return out
		}
		for j := range list.Items {
			out = append(out, client.ObjectKeyFromObject(&list.Items[j]))
		}
	}
	return out
}

func (r *SwarmStackReconciler) stacksReferencing(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list swarmv1.SwarmStackList
		if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, s := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: ktypes.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
		}
		return reqs
	}
}
