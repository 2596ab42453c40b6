package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
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
	rolloutPoll = 2 * time.Second
	// rollbackRequested marks a history entry opened by the rollback annotation.
	rollbackRequested = "Rollback requested"
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
	Recorder record.EventRecorder
	Now      func() time.Time
}

// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch

// Reconcile brings the stack's services on the swarm to the rendered compose files.
func (r *SwarmStackReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s swarmv1.SwarmStack
	// Read from the API server, not the cache: a reconcile must see the status the last
	// one wrote, or it could act twice on a request it already handled.
	if err := r.APIReader.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !s.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, &s)
	}
	if controllerutil.AddFinalizer(&s, stackFinalizer) {
		if err := r.Update(ctx, &s); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := s.DeepCopy()
	result, err := r.reconcileNormal(ctx, &s)
	if err == nil || errors.Is(err, reconcile.TerminalError(nil)) {
		s.Status.ObservedGeneration = s.Generation
	}
	if perr := patchStatus(ctx, r.Client, &s, before, statusChanged(before.Status, s.Status)); perr != nil {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	return result, err
}

func stackNameOf(s *swarmv1.SwarmStack) string {
	if s.Spec.StackName != "" {
		return s.Spec.StackName
	}
	return s.Name
}

func ownerOf(s *swarmv1.SwarmStack) string { return s.Namespace + "." + s.Name }

func (r *SwarmStackReconciler) reconcileNormal(ctx context.Context, s *swarmv1.SwarmStack) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	st := &s.Status
	gen := s.Generation
	stackName := stackNameOf(s)
	owner := ownerOf(s)
	interval := durationOr(s.Spec.Interval, defaultStackInterval)

	if winner, err := r.conflictingStack(ctx, s, stackName); err != nil {
		return ctrl.Result{}, err
	} else if winner != "" {
		markFailed(&st.Conditions, gen, swarmv1.ReasonConflict,
			fmt.Sprintf("SwarmStack %s already manages stack %q on cluster %q", winner, stackName, s.Spec.ClusterRef.Name), true)
		return ctrl.Result{}, nil
	}

	conn, err := r.connect(ctx, s)
	if err != nil {
		markFailed(&st.Conditions, gen, swarmv1.ReasonClusterNotReady, err.Error(), false)
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil //nolint:nilerr // reported in status; the cluster watch brings us back
	}

	in, err := gatherInputs(ctx, r.Client, s, stackName)
	if err != nil {
		if errors.Is(err, errSourceMissing) {
			// The ConfigMap and Secret watches bring us back when it appears.
			markFailed(&st.Conditions, gen, swarmv1.ReasonSourceNotFound, err.Error(), false)
			return ctrl.Result{}, nil
		}
		markFailed(&st.Conditions, gen, swarmv1.ReasonComposeInvalid, err.Error(), true)
		return ctrl.Result{}, nil
	}
	rendered, err := r.Renderer.Render(in.files, in.opts)
	if err != nil {
		if !isReadyWithReason(st.Conditions, swarmv1.ReasonComposeInvalid, err.Error()) {
			r.Recorder.Event(s, corev1.EventTypeWarning, swarmv1.ReasonComposeInvalid, err.Error())
		}
		markFailed(&st.Conditions, gen, swarmv1.ReasonComposeInvalid, err.Error(), true)
		return ctrl.Result{}, reconcile.TerminalError(err)
	}

	current, err := conn.StackServices(ctx, stackName)
	if err != nil {
		markFailed(&st.Conditions, gen, swarmv1.ReasonClusterNotReady, "Reading the stack's services: "+err.Error(), false)
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil //nolint:nilerr // reported in status; retried on a timer
	}
	if msg := ownershipProblem(current, owner, s.Spec.Adopt); msg != "" {
		reason := swarmv1.ReasonNotOwned
		if strings.Contains(msg, "SwarmStack") {
			reason = swarmv1.ReasonConflict
		}
		markFailed(&st.Conditions, gen, reason, msg, true)
		return ctrl.Result{}, nil
	}
	st.Services = serviceStatuses(current)
	recordServiceStates(s, st.Services)

	now := r.Now()
	// Follow the rollout in flight to its end.
	if cur := inFlight(st.History); cur != nil {
		verdict := judgeRollout(current, cur.StartedAt.Time, now)
		deadline := defaultProgressDeadline
		if s.Spec.ProgressDeadlineSeconds != nil {
			deadline = time.Duration(*s.Spec.ProgressDeadlineSeconds) * time.Second
		}
		if verdict.outcome == "" && now.Sub(cur.StartedAt.Time) > deadline {
			verdict = r.onDeadline(ctx, s, conn, current, cur.Revision, deadline)
		}
		if verdict.outcome == "" {
			if verdict.rollbackCause != "" {
				// Swarm says why it rolls back only while it does; keep it for history.
				cur.Message = verdict.rollbackCause
			}
			markReconciling(&st.Conditions, gen, verdict.reason,
				fmt.Sprintf("Rolling out revision %s: %s", shortRev(cur.Revision), verdict.message))
			return ctrl.Result{RequeueAfter: rolloutPoll}, nil
		}
		if verdict.outcome == swarmv1.OutcomeRolledBack {
			verdict.message += failedTaskCause(ctx, conn, current, cur.StartedAt.Time)
		}
		r.finishRollout(s, cur, verdict, now)
		if verdict.outcome == swarmv1.OutcomeCompleted {
			if err := pruneUnused(ctx, conn, rendered, current, owner); err != nil {
				log.Info("Pruning unused stack objects failed, will retry", "error", err.Error())
			}
		}
	}

	if s.Spec.Suspend {
		log.V(1).Info("Suspended: leaving the swarm as it is")
		return ctrl.Result{RequeueAfter: jitter(interval)}, nil
	}

	// Imperative requests, each handled once per new value.
	if v := s.Annotations[swarmv1.AnnotationRollback]; v != "" && v != st.LastHandledRollback {
		st.LastHandledRollback = v
		return r.rollbackStack(ctx, s, conn, current, now)
	}
	retry := false
	if v := s.Annotations[swarmv1.AnnotationRetry]; v != "" && v != st.LastHandledRetry {
		st.LastHandledRetry = v
		retry = true
	}
	if v := s.Annotations[swarmv1.AnnotationReconcileRequestedAt]; v != "" {
		st.LastHandledReconcileAt = v
	}

	// No rollback loop: a revision that failed is not written again by itself.
	if last := lastOutcome(st.History); !retry && rendered.Revision == st.LastAttemptedRevision && failedOutcome(last.Outcome) {
		markFailed(&st.Conditions, gen, outcomeReason(last.Outcome),
			fmt.Sprintf("Revision %s %s: %s", shortRev(last.Revision), outcomeWords(last.Outcome), last.Message), true)
		return ctrl.Result{RequeueAfter: jitter(interval)}, nil
	}

	plan := planServices(rendered, current, owner, s.Spec.Prune == nil || *s.Spec.Prune, retry)
	if plan.empty() {
		if st.LastAttemptedRevision != rendered.Revision {
			st.LastAttemptedRevision = rendered.Revision
			if written, ok := revisionWrittenAt(current, rendered.Revision); ok {
				// An earlier pass wrote this revision but its status was lost (a crash
				// between the two writes): follow that rollout instead of calling it done.
				st.History = pushHistory(st.History, swarmv1.HistoryEntry{
					Revision: rendered.Revision, Version: s.Spec.Version, StartedAt: metav1.NewTime(written), Outcome: swarmv1.OutcomeProgressing,
				})
				markReconciling(&st.Conditions, gen, swarmv1.ReasonProgressing, fmt.Sprintf("Rolling out revision %s", shortRev(rendered.Revision)))
				return ctrl.Result{RequeueAfter: startGrace}, nil
			}
			// Nothing on the swarm differs (for example a comment changed): the revision is in force.
			st.LastAppliedRevision = rendered.Revision
		}
		markReady(&st.Conditions, gen, swarmv1.ReasonSucceeded, readyMessage(s, rendered))
		return ctrl.Result{RequeueAfter: jitter(interval)}, nil
	}

	for _, name := range plan.drifted {
		r.Recorder.Eventf(s, corev1.EventTypeWarning, "DriftCorrected", "Service %s was changed outside the operator; restoring revision %s", name, shortRev(rendered.Revision))
	}
	queryRegistry := s.Spec.ResolveImage == "always" ||
		(s.Spec.ResolveImage == "changed" && rendered.Revision != st.LastAttemptedRevision)
	log.Info("Applying stack", "revision", rendered.Revision, "create", len(plan.create), "update", len(plan.update), "remove", len(plan.prune))
	if err := applyStack(ctx, conn, rendered, in, plan, current, owner, rendered.Revision, queryRegistry); err != nil {
		r.Recorder.Event(s, corev1.EventTypeWarning, swarmv1.ReasonApplyFailed, err.Error())
		markFailed(&st.Conditions, gen, swarmv1.ReasonApplyFailed, err.Error(), false)
		return ctrl.Result{}, err
	}
	newRollout := rendered.Revision != st.LastAttemptedRevision || retry
	st.LastAttemptedRevision = rendered.Revision
	if newRollout || len(plan.create)+len(plan.update) > 0 && inFlight(st.History) == nil {
		st.History = pushHistory(st.History, swarmv1.HistoryEntry{
			Revision: rendered.Revision, Version: s.Spec.Version, StartedAt: metav1.NewTime(now), Outcome: swarmv1.OutcomeProgressing,
		})
		metrics.RolloutsStarted.WithLabelValues(s.Namespace, s.Name).Inc()
		r.Recorder.Eventf(s, corev1.EventTypeNormal, "RolloutStarted", "Rolling out revision %s%s: %d created, %d updated, %d removed",
			shortRev(rendered.Revision), versionSuffix(s.Spec.Version), len(plan.create), len(plan.update), len(plan.prune))
	}
	if after, err := conn.StackServices(ctx, stackName); err == nil {
		st.Services = serviceStatuses(after)
	}
	markReconciling(&st.Conditions, gen, swarmv1.ReasonProgressing, fmt.Sprintf("Rolling out revision %s", shortRev(rendered.Revision)))
	return ctrl.Result{RequeueAfter: startGrace}, nil
}

func (r *SwarmStackReconciler) connect(ctx context.Context, s *swarmv1.SwarmStack) (swarm.Swarm, error) {
	var cluster swarmv1.SwarmCluster
	if err := r.Get(ctx, ktypes.NamespacedName{Namespace: s.Namespace, Name: s.Spec.ClusterRef.Name}, &cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("SwarmCluster %q does not exist", s.Spec.ClusterRef.Name)
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

// conflictingStack returns the name of an older SwarmStack that targets the same stack on
// the same cluster; the oldest one wins, so the outcome does not depend on timing.
func (r *SwarmStackReconciler) conflictingStack(ctx context.Context, s *swarmv1.SwarmStack, stackName string) (string, error) {
	var list swarmv1.SwarmStackList
	// Read-only: no need to deep-copy every stack of the cluster on each reconcile.
	if err := r.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingFields{indexClusterRef: s.Spec.ClusterRef.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return "", err
	}
	for _, o := range list.Items {
		if o.Name == s.Name || stackNameOf(&o) != stackName || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if o.CreationTimestamp.Before(&s.CreationTimestamp) || o.CreationTimestamp.Equal(&s.CreationTimestamp) && o.Name < s.Name {
			return o.Name, nil
		}
	}
	return "", nil
}

// ownershipProblem explains why the stack's existing services may not be touched.
func ownershipProblem(current []swarmtypes.Service, owner string, adopt bool) string {
	for _, svc := range current {
		switch o := svc.Spec.Labels[swarmv1.LabelOwner]; {
		case o == owner:
		case o != "":
			return fmt.Sprintf("Service %s belongs to SwarmStack %s", svc.Spec.Name, o)
		case !adopt:
			return fmt.Sprintf("Service %s exists and was not created by the operator: set spec.adopt to take the stack over", svc.Spec.Name)
		}
	}
	return ""
}

// onDeadline applies onProgressDeadline to a rollout that ran too long.
func (r *SwarmStackReconciler) onDeadline(ctx context.Context, s *swarmv1.SwarmStack, conn swarm.Swarm, current []swarmtypes.Service, revision string, deadline time.Duration) rolloutVerdict {
	msg := fmt.Sprintf("Rollout still running after %s", deadline)
	switch s.Spec.OnProgressDeadline {
	case "", "Rollback":
		var rolled []string
		for _, svc := range current {
			if stillUpdating(svc, revision) {
				if err := conn.RollbackService(ctx, svc.ID, svc.Version); err != nil {
					msg += fmt.Sprintf("; rollback of %s failed: %v", svc.Spec.Name, err)
					continue
				}
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
// Swarm's own message ("rollback completed") no longer says.
func failedTaskCause(ctx context.Context, conn swarm.Swarm, services []swarmtypes.Service, since time.Time) string {
	for _, svc := range services {
		if svc.UpdateStatus == nil || svc.UpdateStatus.State != swarmtypes.UpdateStateRollbackCompleted {
			continue
		}
		tasks, err := conn.ServiceTasks(ctx, svc.ID)
		if err != nil {
			return ""
		}
		var newest *swarmtypes.Task
		for i := range tasks {
			t := &tasks[i]
			if t.Status.Err == "" || t.CreatedAt.Before(since.Add(-clockSkew)) {
				continue
			}
			if newest == nil || t.Status.Timestamp.After(newest.Status.Timestamp) {
				newest = t
			}
		}
		if newest != nil {
			return fmt.Sprintf("; a new task of %s failed: %s", svc.Spec.Name, newest.Status.Err)
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

// rollbackStack asks Swarm to put every owned service back to its previous spec.
func (r *SwarmStackReconciler) rollbackStack(ctx context.Context, s *swarmv1.SwarmStack, conn swarm.Swarm, current []swarmtypes.Service, now time.Time) (ctrl.Result, error) {
	var rolled []string
	var errs []error
	for _, svc := range current {
		// Only services still at the revision being rolled back: a second pass over the
		// same request must not roll them "back" again to the spec they just left.
		if svc.PreviousSpec == nil || svc.Spec.Labels[swarmv1.LabelOwner] != ownerOf(s) ||
			svc.Spec.Labels[swarmv1.LabelRevision] != s.Status.LastAttemptedRevision {
			continue
		}
		if err := conn.RollbackService(ctx, svc.ID, svc.Version); err != nil {
			errs = append(errs, err)
			continue
		}
		rolled = append(rolled, svc.Spec.Name)
	}
	if err := errors.Join(errs...); err != nil {
		markFailed(&s.Status.Conditions, s.Generation, swarmv1.ReasonApplyFailed, "Rollback failed: "+err.Error(), false)
		return ctrl.Result{}, err
	}
	if len(rolled) == 0 {
		r.Recorder.Event(s, corev1.EventTypeWarning, "RollbackSkipped", "No service of the stack has a previous spec to roll back to")
		return ctrl.Result{RequeueAfter: startGrace}, nil
	}
	s.Status.History = pushHistory(s.Status.History, swarmv1.HistoryEntry{
		Revision: s.Status.LastAttemptedRevision, Version: s.Spec.Version, StartedAt: metav1.NewTime(now),
		Outcome: swarmv1.OutcomeProgressing, Message: rollbackRequested,
	})
	r.Recorder.Eventf(s, corev1.EventTypeNormal, "RollbackRequested", "Rolling back %s to their previous specs", strings.Join(rolled, ", "))
	markReconciling(&s.Status.Conditions, s.Generation, swarmv1.ReasonRollingBack, "Rolling back "+strings.Join(rolled, ", "))
	return ctrl.Result{RequeueAfter: startGrace}, nil
}

// finishRollout records a rollout's end in history, conditions and events.
func (r *SwarmStackReconciler) finishRollout(s *swarmv1.SwarmStack, cur *swarmv1.HistoryEntry, v rolloutVerdict, now time.Time) {
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
		r.Recorder.Eventf(s, corev1.EventTypeNormal, "RolloutCompleted", "Revision %s%s completed", shortRev(cur.Revision), versionSuffix(cur.Version))
		return
	}
	r.Recorder.Eventf(s, corev1.EventTypeWarning, outcomeReason(cur.Outcome), "Revision %s%s %s: %s",
		shortRev(cur.Revision), versionSuffix(cur.Version), outcomeWords(cur.Outcome), cur.Message)
}

// recordServiceStates exports each service's update state, replacing the stack's old ones.
func recordServiceStates(s *swarmv1.SwarmStack, services []swarmv1.ServiceStatus) {
	metrics.ServiceUpdateState.DeletePartialMatch(prometheus.Labels{"namespace": s.Namespace, "stack": s.Name})
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

func (r *SwarmStackReconciler) reconcileDelete(ctx context.Context, s *swarmv1.SwarmStack) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s, stackFinalizer) {
		return ctrl.Result{}, nil
	}
	if s.Spec.DeletionPolicy != "Orphan" {
		conn, err := r.connect(ctx, s)
		if err != nil {
			// Keep the finalizer: removing it would orphan the stack without saying so.
			return ctrl.Result{RequeueAfter: 10 * time.Second}, nil //nolint:nilerr // retried on a timer
		}
		remaining, err := removeStack(ctx, conn, stackNameOf(s), ownerOf(s))
		if err != nil {
			return ctrl.Result{}, err
		}
		if remaining > 0 {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		r.Recorder.Eventf(s, corev1.EventTypeNormal, "StackRemoved", "Removed stack %s from the swarm", stackNameOf(s))
	}
	metrics.ServiceUpdateState.DeletePartialMatch(prometheus.Labels{"namespace": s.Namespace, "stack": s.Name})
	controllerutil.RemoveFinalizer(s, stackFinalizer)
	return ctrl.Result{}, r.Update(ctx, s)
}

// SetupWithManager watches SwarmStacks, what they reference, and the swarm's events.
func (r *SwarmStackReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &swarmv1.SwarmStack{}, indexClusterRef, func(o client.Object) []string {
		return []string{o.(*swarmv1.SwarmStack).Spec.ClusterRef.Name}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &swarmv1.SwarmStack{}, indexConfigMaps, func(o client.Object) []string {
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
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &swarmv1.SwarmStack{}, indexSecrets, func(o client.Object) []string {
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
	}); err != nil {
		return err
	}

	swarmEvents := make(chan event.GenericEvent, 4096)
	r.Hub.Subscribe(func(ev swarm.Event) {
		if ev.Type != events.ServiceEventType || ev.Disconnected {
			return
		}
		// Service events name the service; its stack is the prefix before "_" as stack
		// deploy names them, or the stack label when the event carries it.
		name := ev.Attributes["name"]
		for _, key := range r.stacksOfCluster(ev.Cluster) {
			if strings.HasPrefix(name, key.stack+"_") {
				sendNonBlocking(swarmEvents, &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: key.ns, Name: key.name}})
			}
		}
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&swarmv1.SwarmStack{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(indexConfigMaps))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(indexSecrets))).
		Watches(&swarmv1.SwarmCluster{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(indexClusterRef))).
		WatchesRawSource(source.Channel(swarmEvents, &handler.EnqueueRequestForObject{})).
		Named("swarmstack").
		Complete(r)
}

type stackKey struct{ ns, name, stack string }

// stacksOfCluster lists the stacks that deploy onto a cluster, from the informer cache.
func (r *SwarmStackReconciler) stacksOfCluster(cluster ktypes.NamespacedName) []stackKey {
	var list swarmv1.SwarmStackList
	if err := r.List(context.Background(), &list, client.InNamespace(cluster.Namespace), client.MatchingFields{indexClusterRef: cluster.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	out := make([]stackKey, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, stackKey{ns: list.Items[i].Namespace, name: list.Items[i].Name, stack: stackNameOf(&list.Items[i])})
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
