package swarmstack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
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
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/security"
	"github.com/swarmops/swarm-operator/internal/stack"
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

// Reconciler deploys compose stacks and reports their rollouts.
type Reconciler struct {
	client.Client
	// APIReader reads the reconciled object itself, bypassing the cache.
	APIReader client.Reader
	// Hub streams the swarms' events (SetupWithManager); Swarms opens them.
	Hub      *swarm.Hub
	Swarms   reconcile.Swarms
	Renderer *compose.Cache
	// NamingKey keys the hashes in secret and config names and in revisions, so that
	// names listed on the swarm do not let anyone confirm guesses of the data offline.
	NamingKey []byte
	Recorder  record.EventRecorder
	// Concurrent is how many stacks are reconciled at once.
	Concurrent int
	Now        func() time.Time
	// Sources reads the Flux sources of spec.sourceRef (internal/stack/source.go).
	Sources stack.Sources
	// Security is the operator's security policy: the level every stack is held to at
	// least (--stack-security-default) and the host paths and ports baseline allows
	// (stack_security.go).
	Security security.Policy
	// Notifier, when set (--events-addr), sends each rollout's start and outcome to
	// Flux's notification-controller (stack_notify.go).
	Notifier Notifier
}

// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Reconcile brings the stack's services on the swarm to the rendered compose files.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if result, ok := r.settledFromCache(ctx, req); ok {
		return result, nil
	}
	return reconcile.Lifecycle[*swarmv1.SwarmStack]{
		Client: r.Client, APIReader: r.APIReader, Finalizer: stackFinalizer,
		NewObject:    func() *swarmv1.SwarmStack { return &swarmv1.SwarmStack{} },
		Status:       func(s *swarmv1.SwarmStack) any { return s.Status },
		Observed:     func(s *swarmv1.SwarmStack) { s.Status.ObservedGeneration = s.Generation },
		Normal:       r.reconcileNormal,
		Remove:       r.reconcileDelete,
		AfterPersist: r.notify,
	}.Reconcile(ctx, req)
}

// judgeRollout judges the rollout in flight on the services read in this pass.
func (sc *stackScope) judgeRollout(ctx context.Context, cur *swarmv1.HistoryEntry) stack.Verdict {
	return stack.JudgeOnWritten(ctx, sc.conn, sc.current, cur, sc.now, sc.jobRuns(ctx))
}

// jobRuns reads the runs of the stack's job services once per pass, for the verdict and
// the order alike.
func (sc *stackScope) jobRuns(ctx context.Context) map[string]stack.JobRun {
	if !sc.jobsRead {
		sc.jobs, sc.jobsRead = stack.JobRuns(ctx, sc.conn, sc.current), true
	}
	return sc.jobs
}

// ordered: the stack is released in waves along depends_on.
func (sc *stackScope) ordered() bool {
	return sc.s.Spec.UpdateOrder == swarmv1.UpdateOrderDependsOn && sc.rendered != nil
}

// rollBackRevision puts every service that the failed revision wrote back to the spec it
// ran before that revision, its previous spec (rollbackPolicy Stack). Swarm rolls back
// one service at a time and knows no stack: without this a failed release ends half
// applied. Services the revision created are removed; with no completed revision to go
// back to, they stay.
func (sc *stackScope) rollBackRevision(ctx context.Context, cur *swarmv1.HistoryEntry, v *stack.Verdict) {
	last := sc.s.Status.LastAppliedRevision
	if err := sc.fresh(ctx); err != nil {
		v.Message += "; not rolled back yet: " + err.Error()
		return
	}
	var back, removed, failed []string
	for _, svc := range sc.current {
		name := svc.Spec.Name
		if svc.Spec.Labels[swarmv1.LabelOwner] != sc.owner {
			continue
		}
		if u := svc.UpdateStatus; u != nil && stack.RollingBackSince(u, cur.StartedAt.Time) || sc.rolledBack[svc.ID] {
			back = append(back, name) // Swarm, or the deadline, is already rolling it back
			continue
		}
		if svc.Spec.Labels[swarmv1.LabelRevision] != cur.Revision {
			continue // not changed by this revision
		}
		if stack.IsJob(svc) {
			// A job's run cannot be undone, and its previous spec would run the previous
			// job again (a migration the release had moved past).
			continue
		}
		switch prev := svc.PreviousSpec; {
		case prev == nil && last == "":
			failed = append(failed, name+": no completed revision to go back to")
		case prev == nil && svc.CreatedAt.Before(cur.StartedAt.Add(-stack.ClockSkew)):
			failed = append(failed, fmt.Sprintf("%s: it has no previous spec and was not created by revision %s", name, stack.ShortRev(cur.Revision)))
		case prev == nil:
			if err := sc.conn.RemoveService(ctx, svc.ID); err != nil {
				failed = append(failed, fmt.Sprintf("%s: removing it failed: %v", name, err))
				continue
			}
			removed = append(removed, name)
		case prev.Labels[swarmv1.LabelRevision] == cur.Revision:
			// Written twice in the revision: its previous spec is the failed one too.
			failed = append(failed, fmt.Sprintf("%s: written more than once by revision %s, its previous spec is that revision too", name, stack.ShortRev(cur.Revision)))
		default:
			// What ran before this revision, whichever revision wrote it: a service the
			// last completed release did not change still carries an older label.
			if err := sc.conn.RollbackService(ctx, svc.ID, svc.Version); err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			back = append(back, name)
		}
	}
	if len(back)+len(removed)+len(failed) == 0 {
		// Nothing the revision wrote can go back (a failed job's run stays as it ran):
		// the outcome stays what failed.
		return
	}
	slices.Sort(back)
	cur.RolledBackServices = slices.Concat(back, removed)
	msg := "; the stack rolled back to revision " + stack.ShortRev(last)
	if len(back) > 0 {
		msg += ": " + strings.Join(back, ", ")
	}
	if len(removed) > 0 {
		msg += "; removed, as the revision created them: " + strings.Join(removed, ", ")
	}
	v.Outcome, v.Reason = swarmv1.OutcomeRolledBack, swarmv1.ReasonRolledBack
	if len(failed) > 0 {
		msg += "; not rolled back: " + strings.Join(failed, "; ")
		v.Outcome, v.Reason = swarmv1.OutcomeRollbackFailed, swarmv1.ReasonRollbackFailed
	}
	v.Message += msg
	sc.event(corev1.EventTypeWarning, swarmv1.EventStackRolledBack, "Revision %s failed%s", stack.ShortRev(cur.Revision), msg)
}

func supersededBy(sc *stackScope) string {
	switch {
	case sc.rollbackRequest != "":
		return "Superseded by a rollback request"
	case sc.retryRequest != "":
		return "Superseded by a retry request"
	}
	return "Superseded by revision " + stack.ShortRev(sc.rendered.Revision)
}

// cleanUpStack removes the networks, secrets and configs the stack no longer uses, when
// its revision took effect in this pass (only a write of the operator's makes something
// unused) or an earlier prune failed (condition Pruned=False). A pass with nothing to do
// therefore lists nothing more than the stack's services.
func cleanUpStack(ctx context.Context, sc *stackScope) error {
	st := &sc.s.Status
	retry := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionPruned) != nil
	if !stack.PruneEnabled(sc.s) {
		meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionPruned)
		return nil
	}
	if !sc.revisionInForce && !retry || st.LastAppliedRevision != sc.rendered.Revision || st.RolloutInFlight() != nil {
		return nil
	}
	// What is unused is decided on the services as a manager shows them.
	if err := sc.fresh(ctx); err != nil {
		return err
	}
	var errs []error
	if sc.s.Spec.RollbackPolicy == swarmv1.RollbackPolicyStack {
		for _, svc := range stack.PlanServices(sc.rendered, sc.current, sc.owner, true, false).Prune {
			if err := sc.conn.RemoveService(ctx, svc.ID); err != nil {
				errs = append(errs, fmt.Errorf("removing service %s: %w", svc.Spec.Name, err))
			}
		}
	}
	if err := stack.PruneUnused(ctx, sc.conn, sc.rendered, sc.current, sc.owner); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		msg := sc.redact.Text(err.Error())
		sc.log.Info("Removing what the stack no longer uses failed, will retry", "error", msg)
		if !retry {
			sc.event(corev1.EventTypeWarning, swarmv1.ReasonPruneFailed, "Removing what revision %s no longer uses: %s; retrying", stack.ShortRev(sc.rendered.Revision), msg)
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: swarmv1.ConditionPruned, Status: metav1.ConditionFalse, ObservedGeneration: sc.s.Generation,
			Reason: swarmv1.ReasonPruneFailed, Message: msg,
		})
		sc.requeue(pruneRetry)
		return nil
	}
	meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionPruned)
	return nil
}

func (r *Reconciler) connect(ctx context.Context, s *swarmv1.SwarmStack) (swarm.Swarm, error) {
	return reconcile.Connect(ctx, r.Client, r.Swarms, s.Namespace, s.Spec.ClusterRef.Name)
}

// rivals lists the other SwarmStacks that target the same stack on the same cluster:
// older is the oldest one older than s (it wins, so the outcome does not depend on which
// reconciles first), newer the owner values of the younger ones, whose services s may take
// back.
func (r *Reconciler) rivals(ctx context.Context, s *swarmv1.SwarmStack, stackName string) (newer map[string]bool, older string, err error) {
	var list swarmv1.SwarmStackList
	// Read-only: no need to deep-copy every stack of the cluster on each reconcile.
	// By cluster and stack name: the rivals only, not every stack of the cluster.
	if err := r.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingFields{reconcile.IndexClusterStack: reconcile.ClusterStackKey(s)}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, "", err
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == s.Name || stack.NameOf(o) != stackName {
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
		newer[stack.OwnerOf(o)] = true
	}
	return newer, older, nil
}

func olderStack(a, b *swarmv1.SwarmStack) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// onDeadline applies onProgressDeadline to a rollout that ran too long.
func (sc *stackScope) onDeadline(ctx context.Context, revision string, deadline time.Duration) stack.Verdict {
	msg := fmt.Sprintf("Rollout still running after %s", deadline)
	switch sc.s.Spec.OnProgressDeadline {
	case "", "Rollback":
		var rolled []string
		for _, svc := range sc.current {
			if stack.StillUpdating(svc, revision) {
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
	return stack.Verdict{Outcome: swarmv1.OutcomeDeadlineExceeded, Reason: swarmv1.ReasonDeadlineExceeded, Message: msg}
}

// finishRollout records a rollout's end in history, conditions and events.
func (sc *stackScope) finishRollout(cur *swarmv1.HistoryEntry, v stack.Verdict) {
	s, now := sc.s, sc.now
	t := metav1.NewTime(now)
	cur.FinishedAt = &t
	cur.Outcome = v.Outcome
	switch {
	case cur.Message == "" || v.Outcome == swarmv1.OutcomeCompleted && cur.Message != rollbackRequested:
		cur.Message = v.Message
	case v.Outcome == swarmv1.OutcomeRolledBack && !strings.Contains(cur.Message, v.Message):
		cur.Message += "; " + v.Message
	}
	defer func() {
		metrics.RolloutsFinished.WithLabelValues(s.Namespace, s.Name, cur.Outcome).Inc()
		metrics.RolloutDuration.WithLabelValues(cur.Outcome).Observe(now.Sub(cur.StartedAt.Time).Seconds())
	}()
	if v.Outcome == swarmv1.OutcomeCompleted && cur.Message != rollbackRequested {
		s.Status.LastAppliedRevision = cur.Revision
		sc.revisionInForce = true
		s.Status.LastAppliedSourceRevision = cur.SourceRevision
		sc.event(corev1.EventTypeNormal, swarmv1.EventRolloutCompleted, "Revision %s%s completed", stack.ShortRev(cur.Revision), stack.VersionSuffix(cur.Version))
		return
	}
	if v.Outcome == swarmv1.OutcomeSuperseded {
		sc.event(corev1.EventTypeNormal, swarmv1.EventRolloutSuperseded, "Revision %s%s: %s", stack.ShortRev(cur.Revision), stack.VersionSuffix(cur.Version), cur.Message)
		return
	}
	sc.event(corev1.EventTypeWarning, stack.OutcomeReason(cur.Outcome), "Revision %s%s %s: %s",
		stack.ShortRev(cur.Revision), stack.VersionSuffix(cur.Version), stack.OutcomeWords(cur.Outcome), cur.Message)
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

func readyMessage(s *swarmv1.SwarmStack, rendered *compose.Stack) string {
	return fmt.Sprintf("Revision %s%s applied: %d services", stack.ShortRev(rendered.Revision), stack.VersionSuffix(s.Spec.Version), len(rendered.Services))
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
func (r *Reconciler) reconcileDelete(ctx context.Context, s *swarmv1.SwarmStack) (ctrl.Result, bool, error) {
	result, done, err := r.removeFromSwarm(ctx, s)
	if done {
		labels := prometheus.Labels{"namespace": s.Namespace, "stack": s.Name}
		metrics.ServiceUpdateState.DeletePartialMatch(labels)
		metrics.StackRevisionHeld.DeletePartialMatch(labels)
		metrics.StackPolicyViolations.DeletePartialMatch(labels)
	}
	return result, done, err
}

func (r *Reconciler) removeFromSwarm(ctx context.Context, s *swarmv1.SwarmStack) (ctrl.Result, bool, error) {
	if s.Spec.DeletionPolicy == "Orphan" {
		return ctrl.Result{}, true, nil
	}
	conn, err := r.connect(ctx, s)
	if errors.Is(err, reconcile.ErrClusterGone) || errors.Is(err, reconcile.ErrSecretNotFound) {
		r.Recorder.Eventf(s, corev1.EventTypeWarning, swarmv1.EventStackOrphaned,
			"Stack %s stays on the swarm as it is: %v", stack.NameOf(s), err)
		return ctrl.Result{}, true, nil
	}
	if err != nil {
		reconcile.MarkFailed(&s.Status.Conditions, s.Generation, swarmv1.ReasonClusterNotReady,
			"Removing the stack: "+err.Error()+"; set spec.deletionPolicy to Orphan to leave it on the swarm", false)
		return ctrl.Result{RequeueAfter: 10 * time.Second}, false, nil //nolint:nilerr // reported in status; retried on a timer
	}
	remaining, err := stack.RemoveStack(ctx, conn, stack.NameOf(s), stack.OwnerOf(s))
	if err != nil {
		return ctrl.Result{}, false, err
	}
	if remaining > 0 {
		return ctrl.Result{RequeueAfter: time.Second}, false, nil
	}
	r.Recorder.Eventf(s, corev1.EventTypeNormal, swarmv1.EventStackRemoved, "Removed stack %s from the swarm", stack.NameOf(s))
	return ctrl.Result{}, true, nil
}

// SetupWithManager watches SwarmStacks, what they reference, and the swarm's events.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	for _, indexes := range []map[string]client.IndexerFunc{reconcile.StackIndexes, reconcile.StackSourceIndexes} {
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
			reconcile.SendNonBlocking(swarmEvents, &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		For(&swarmv1.SwarmStack{}, builder.WithPredicates(notNewStack,
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// New stacks queue below changes to running ones (stack_priority.go).
		Watches(&swarmv1.SwarmStack{}, newStackHandler, builder.WithPredicates(isNewStack)).
		// Metadata only: the cluster's Secrets and ConfigMaps are not cached whole (see
		// ManagerOptions); a reconcile reads the few it needs.
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(reconcile.IndexConfigMaps)), builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(reconcile.IndexSecrets)), builder.OnlyMetadata).
		Watches(&swarmv1.SwarmCluster{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencing(reconcile.IndexClusterRef)),
			builder.WithPredicates(clusterUsable)).
		// A namespace's security labels decide what its stacks may run (stack_security.go).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.stacksInNamespace), builder.OnlyMetadata,
			builder.WithPredicates(securityLabelsChanged)).
		WatchesRawSource(source.Channel(swarmEvents, swarmEventHandler)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrent, 1)})
	// Flux sources (new artifacts) and dependencies (turning Ready): stack_watch.go.
	return r.watchSources(mgr, b).
		Named("swarmstack").
		Complete(r)
}

// stacksOfService names the SwarmStacks that a service of a cluster may belong to. Stack
// deploy names a service <stack>_<service>, and a stack name may hold "_" itself, so each
// prefix before an "_" is looked up in the cluster+stack index: a few lookups per event
// whatever the number of stacks on the cluster. Ambiguous names wake every candidate.
func (r *Reconciler) stacksOfService(ctx context.Context, cluster ktypes.NamespacedName, service string) []ktypes.NamespacedName {
	var out []ktypes.NamespacedName
	for i := 1; i < len(service); i++ {
		if service[i] != '_' {
			continue
		}
		var list swarmv1.SwarmStackList
		if err := r.List(ctx, &list, client.InNamespace(cluster.Namespace), client.MatchingFields{reconcile.IndexClusterStack: reconcile.ClusterStackIndexKey(cluster.Name, service[:i])}, client.UnsafeDisableDeepCopy); err != nil {
			return out
		}
		for j := range list.Items {
			out = append(out, client.ObjectKeyFromObject(&list.Items[j]))
		}
	}
	return out
}

func (r *Reconciler) stacksReferencing(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []crreconcile.Request {
		var list swarmv1.SwarmStackList
		if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]crreconcile.Request, 0, len(list.Items))
		for _, s := range list.Items {
			reqs = append(reqs, crreconcile.Request{NamespacedName: ktypes.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
		}
		return reqs
	}
}
