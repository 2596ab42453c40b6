package swarmcluster

import (
	"context"
	"errors"
	"fmt"
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
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

const defaultClusterInterval = 30 * time.Second

// Reconciler keeps a SwarmCluster's connection and health status.
type Reconciler struct {
	client.Client
	// Hub streams the swarms' events (SetupWithManager); Swarms opens them.
	Hub      *swarm.Hub
	Swarms   reconcile.Swarms
	Recorder record.EventRecorder
	// Concurrent is how many clusters are probed at once.
	Concurrent int
}

// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconcile reads the swarm's health through the cluster's managers.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cluster swarmv1.SwarmCluster
	if err := r.Get(ctx, req.NamespacedName, &cluster); err != nil {
		if apierrors.IsNotFound(err) {
			r.Swarms.Forget(req.NamespacedName)
			labels := prometheus.Labels{"namespace": req.Namespace, "cluster": req.Name}
			metrics.ClusterReachable.Delete(labels)
			metrics.ManagersReachable.Delete(labels)
			metrics.ManagersQuorum.Delete(labels)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := cluster.DeepCopy()
	interval := reconcile.DurationOr(cluster.Spec.Interval, defaultClusterInterval)
	result, err := r.observe(ctx, &cluster)
	cluster.Status.ObservedGeneration = cluster.Generation
	recordClusterMetrics(&cluster)
	if result.RequeueAfter == 0 {
		result.RequeueAfter = reconcile.Jitter(interval)
	}
	return reconcile.PersistStatus(ctx, r.Client, &cluster, before, reconcile.StatusChanged(before.Status, cluster.Status), result, err)
}

func (r *Reconciler) observe(ctx context.Context, cluster *swarmv1.SwarmCluster) (ctrl.Result, error) {
	st := &cluster.Status
	gen := cluster.Generation
	wasReady := reconcile.IsReady(st.Conditions)
	conn, err := r.Swarms.Open(ctx, r.Client, cluster)
	if err != nil {
		reason := swarmv1.ReasonInvalidSpec
		switch {
		case errors.Is(err, reconcile.ErrSecretNotFound):
			reason = swarmv1.ReasonSecretNotFound
		case errors.Is(err, reconcile.ErrEndpointNotAllowed):
			reason = swarmv1.ReasonEndpointNotAllowed
		case errors.Is(err, swarm.ErrTLS):
			reason = swarmv1.ReasonTLSError
		case !errors.Is(err, swarm.ErrInvalid):
			return ctrl.Result{}, err
		}
		reconcile.MarkFailed(&st.Conditions, gen, reason, err.Error(), true)
		// The Secret watch brings us back when it appears; no tight retry loop.
		return ctrl.Result{}, nil
	}
	health, err := conn.Health(ctx)
	if err != nil {
		reason := swarmv1.ReasonUnreachable
		switch {
		case errors.Is(err, swarm.ErrQuorumLost):
			reason = swarmv1.ReasonQuorumLost
		case errors.Is(err, swarm.ErrTLS):
			reason = swarmv1.ReasonTLSError
		case errors.Is(err, swarm.ErrNotInSwarm):
			reason = swarmv1.ReasonNotInSwarm
		case errors.Is(err, swarm.ErrNotAManager):
			reason = swarmv1.ReasonNotAManager
		}
		reconcile.MarkFailed(&st.Conditions, gen, reason, err.Error(), false)
		st.Managers = managersFromLastSeen(st.Managers)
		if wasReady {
			r.Recorder.Event(cluster, corev1.EventTypeWarning, reason, err.Error())
		}
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	st.SwarmID = health.SwarmID
	st.APIVersion = health.APIVersion
	if st.Endpoint != "" && st.Endpoint != health.Endpoint {
		r.Recorder.Eventf(cluster, corev1.EventTypeNormal, "EndpointChanged", "Now using %s (was %s)", health.Endpoint, st.Endpoint)
	}
	st.Endpoint = health.Endpoint
	st.Managers, st.Nodes = summarise(health.Nodes)
	m := st.Managers
	msg := fmt.Sprintf("Swarm %s via %s: %d/%d managers reachable (quorum %d), %d/%d nodes ready",
		reconcile.ShortID(health.SwarmID), health.Endpoint, m.Reachable, m.Total, m.Quorum, st.Nodes.Ready, st.Nodes.Total)
	if u := st.Nodes.Unknown; u > 0 {
		msg += fmt.Sprintf(", %d unknown (the leader has not heard from them yet: a leader election just happened, or they are beyond a partition)", u)
	}
	if m.Reachable < m.Quorum {
		reconcile.MarkFailed(&st.Conditions, gen, swarmv1.ReasonQuorumLost, "Quorum is lost: "+msg, false)
		if wasReady {
			r.Recorder.Event(cluster, corev1.EventTypeWarning, swarmv1.ReasonQuorumLost, "Quorum is lost: "+msg)
		}
	} else {
		reconcile.MarkReady(&st.Conditions, gen, swarmv1.ReasonConnected, msg)
		if !wasReady {
			r.Recorder.Event(cluster, corev1.EventTypeNormal, swarmv1.ReasonConnected, msg)
		}
	}
	switch {
	case m.Total%2 == 0:
		reconcile.SetCondition(&st.Conditions, gen, swarmv1.ConditionManagerWarning, metav1.ConditionTrue, "EvenManagerCount",
			fmt.Sprintf("%d managers tolerate no more failures than %d: use an odd number", m.Total, m.Total-1))
	case m.Total > 7:
		reconcile.SetCondition(&st.Conditions, gen, swarmv1.ConditionManagerWarning, metav1.ConditionTrue, "TooManyManagers",
			fmt.Sprintf("%d managers: more than 7 slows every Raft write without real gain", m.Total))
	default:
		reconcile.SetCondition(&st.Conditions, gen, swarmv1.ConditionManagerWarning, metav1.ConditionFalse, "OddManagerCount",
			fmt.Sprintf("%d managers tolerate %d failures", m.Total, m.FaultTolerance))
	}
	return ctrl.Result{}, nil
}

// managersFromLastSeen keeps the last known totals but no longer claims any reachable
// manager: we could not reach one.
func managersFromLastSeen(m *swarmv1.ManagerStatus) *swarmv1.ManagerStatus {
	if m == nil {
		return nil
	}
	out := *m
	out.Reachable = 0
	out.Leader = ""
	return &out
}

// summarise counts managers and nodes. Quorum is floor(N/2)+1.
func summarise(nodes []swarmtypes.Node) (*swarmv1.ManagerStatus, *swarmv1.NodeCounts) {
	m := &swarmv1.ManagerStatus{}
	n := &swarmv1.NodeCounts{}
	for _, node := range nodes {
		n.Total++
		switch node.Status.State {
		case swarmtypes.NodeStateReady:
			n.Ready++
		case swarmtypes.NodeStateUnknown:
			n.Unknown++
		}
		switch node.Spec.Availability {
		case swarmtypes.NodeAvailabilityActive:
			n.Active++
		case swarmtypes.NodeAvailabilityPause:
			n.Pause++
		case swarmtypes.NodeAvailabilityDrain:
			n.Drain++
		}
		if ms := node.ManagerStatus; ms != nil {
			m.Total++
			if ms.Reachability == swarmtypes.ReachabilityReachable {
				m.Reachable++
			}
			if ms.Leader {
				m.Leader = node.Description.Hostname
			}
		}
	}
	m.Quorum = m.Total/2 + 1
	m.FaultTolerance = m.Total - m.Quorum
	return m, n
}

func recordClusterMetrics(c *swarmv1.SwarmCluster) {
	reachable := 0.0
	if reconcile.IsReady(c.Status.Conditions) {
		reachable = 1
	}
	metrics.ClusterReachable.WithLabelValues(c.Namespace, c.Name).Set(reachable)
	if m := c.Status.Managers; m != nil {
		metrics.ManagersReachable.WithLabelValues(c.Namespace, c.Name).Set(float64(m.Reachable))
		metrics.ManagersQuorum.WithLabelValues(c.Namespace, c.Name).Set(float64(m.Quorum))
	}
}

// SetupWithManager watches SwarmClusters, their TLS Secrets and the swarm's node events.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &swarmv1.SwarmCluster{}, reconcile.IndexTLSSecret,
		func(o client.Object) []string {
			if ref := o.(*swarmv1.SwarmCluster).Spec.TLSSecretRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}); err != nil {
		return err
	}
	swarmEvents := make(chan event.GenericEvent, 1024)
	r.Hub.Subscribe(func(ev swarm.Event) {
		// Node changes and lost streams change the health we report; service events do not.
		if ev.Disconnected || ev.Type == events.NodeEventType {
			reconcile.SendNonBlocking(swarmEvents, &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ev.Cluster.Namespace, Name: ev.Cluster.Name}})
		}
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&swarmv1.SwarmCluster{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.clustersForSecret), builder.OnlyMetadata).
		WatchesRawSource(source.Channel(swarmEvents, &handler.EnqueueRequestForObject{})).
		// An unreachable cluster's reconcile waits for timeouts (tens of seconds): it
		// must not hold up the health of the others.
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrent, 1)}).
		Named("swarmcluster").
		Complete(r)
}

func (r *Reconciler) clustersForSecret(ctx context.Context, o client.Object) []crreconcile.Request {
	var list swarmv1.SwarmClusterList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{reconcile.IndexTLSSecret: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]crreconcile.Request, 0, len(list.Items))
	for _, c := range list.Items {
		reqs = append(reqs, crreconcile.Request{NamespacedName: ktypes.NamespacedName{Namespace: c.Namespace, Name: c.Name}})
	}
	return reqs
}
