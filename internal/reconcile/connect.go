package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// ErrClusterGone says the referenced SwarmCluster does not exist.
var ErrClusterGone = errors.New("SwarmCluster not found")

// ErrSecretNotFound marks a missing TLS Secret or key, as opposed to a broken certificate.
var ErrSecretNotFound = errors.New("secret not found")

// Index names for the field indexes that map referenced objects back to their users.
const (
	IndexClusterRef = ".spec.clusterRef.name"
	// IndexClusterStack is cluster and stack name: the SwarmStacks that would manage
	// the same stack on the same swarm.
	IndexClusterStack = ".spec.clusterRef.name+stackName"
	IndexConfigMaps   = ".spec.configMapRefs"
	IndexSecrets      = ".spec.secretRefs"
	IndexTLSSecret    = ".spec.tlsSecretRef.name"
)

// Swarms opens the Swarm that a SwarmCluster names. Production uses the Hub's pooled
// connections; tests give an in-memory Swarm.
type Swarms interface {
	Open(ctx context.Context, c client.Reader, cluster *swarmv1.SwarmCluster) (swarm.Swarm, error)
	// Forget drops what is kept for a SwarmCluster that is gone or changed.
	Forget(cluster ktypes.NamespacedName)
}

// HubSwarms opens Swarms through the Hub's connection pool.
type HubSwarms struct {
	Hub *swarm.Hub
	// Metadata, when set, reads the TLS Secrets' metadata (the manager's cache, where
	// Secrets are kept as metadata only). A cluster whose spec and Secret are the same
	// version as when its pooled connection was made then reuses that connection
	// without reading the Secret's data from the API server: every reconcile of every
	// stack would otherwise make that read.
	Metadata client.Reader
	pooled   *sync.Map // cluster → pooledConn
}

type pooledConn struct {
	version string // the cluster's generation and its TLS Secret's UID and resourceVersion
	conn    *swarm.Conn
}

// NewHubSwarms opens swarms through hub, reading TLS Secret versions from metadata.
func NewHubSwarms(hub *swarm.Hub, metadata client.Reader) HubSwarms {
	return HubSwarms{Hub: hub, Metadata: metadata, pooled: &sync.Map{}}
}

// Open returns the pooled connection to the cluster's swarm, with its service cache, reading the TLS Secret it
// names when it changed. Every controller goes through here, so all share one
// connection.
func (h HubSwarms) Open(ctx context.Context, c client.Reader, cluster *swarmv1.SwarmCluster) (swarm.Swarm, error) {
	key := client.ObjectKeyFromObject(cluster)
	version := h.tlsVersion(ctx, cluster)
	if version != "" {
		if p, ok := h.pooled.Load(key); ok && p.(pooledConn).version == version && h.Hub.Holds(key, p.(pooledConn).conn) {
			return h.Hub.View(key, p.(pooledConn).conn), nil
		}
	}
	conn, err := ConnectCluster(ctx, c, h.Hub, cluster)
	if err != nil {
		return nil, err
	}
	if version != "" {
		h.pooled.Store(key, pooledConn{version: version, conn: conn})
	}
	// The cached view: a pass observes the stack's services from the Swarm's cache.
	return h.Hub.View(key, conn), nil
}

// tlsVersion names what the connection of a cluster with a TLS Secret is made of, or is
// "" when there is nothing to save (no Secret, no metadata reader, the Secret unknown).
func (h HubSwarms) tlsVersion(ctx context.Context, cluster *swarmv1.SwarmCluster) string {
	ref := cluster.Spec.TLSSecretRef
	if ref == nil || h.Metadata == nil || h.pooled == nil {
		return ""
	}
	var m metav1.PartialObjectMetadata
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := h.Metadata.Get(ctx, ktypes.NamespacedName{Namespace: cluster.Namespace, Name: ref.Name}, &m); err != nil {
		return ""
	}
	return fmt.Sprintf("%s/%d/%s/%s/%s", cluster.UID, cluster.Generation, ref.Name, m.UID, m.ResourceVersion)
}

// Forget closes the connection of a SwarmCluster.
func (h HubSwarms) Forget(cluster ktypes.NamespacedName) {
	if h.pooled != nil {
		h.pooled.Delete(cluster)
	}
	h.Hub.Forget(cluster)
}

func ConnectCluster(ctx context.Context, c client.Reader, hub *swarm.Hub, cluster *swarmv1.SwarmCluster) (*swarm.Conn, error) {
	t := swarm.Target{Endpoints: cluster.Spec.Endpoints, Insecure: cluster.Spec.Insecure}
	if ref := cluster.Spec.TLSSecretRef; ref != nil {
		var s corev1.Secret
		if err := c.Get(ctx, ktypes.NamespacedName{Namespace: cluster.Namespace, Name: ref.Name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%w: TLS Secret %q does not exist", ErrSecretNotFound, ref.Name)
			}
			return nil, err
		}
		for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
			if len(s.Data[k]) == 0 {
				return nil, fmt.Errorf("%w: TLS Secret %q has no key %q (want ca.crt, tls.crt, tls.key)", ErrSecretNotFound, ref.Name, k)
			}
		}
		t.CA, t.Cert, t.Key = s.Data["ca.crt"], s.Data["tls.crt"], s.Data["tls.key"]
	}
	return hub.Connect(client.ObjectKeyFromObject(cluster), t)
}

// ClusterNotReady says why a SwarmCluster, by its current status, cannot be used. The
// stack and maintenance controllers then wait for it (the SwarmCluster watch brings
// them back) instead of each paying the timeouts of an unreachable swarm: a worker busy
// with a dead cluster serves no other.
func ClusterNotReady(cluster *swarmv1.SwarmCluster) error {
	c := meta.FindStatusCondition(cluster.Status.Conditions, swarmv1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.ObservedGeneration != cluster.Generation {
		return nil
	}
	return fmt.Errorf("SwarmCluster %q is not ready (%s): %s", cluster.Name, c.Reason, c.Message)
}

// MaxConditionMessage keeps condition messages far below the API's 32768-character limit;
// a longer one would make the whole status patch fail.
const MaxConditionMessage = 4096

// SetCondition sets a condition with the object's generation.
func SetCondition(conds *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	if len(msg) > MaxConditionMessage {
		msg = strings.ToValidUTF8(msg[:MaxConditionMessage-3], "") + "..."
	}
	meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation})
}

// MarkReady sets Ready=True and drops the kstatus abnormal-true conditions.
func MarkReady(conds *[]metav1.Condition, generation int64, reason, msg string) {
	SetCondition(conds, generation, swarmv1.ConditionReady, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(conds, swarmv1.ConditionReconciling)
	meta.RemoveStatusCondition(conds, swarmv1.ConditionStalled)
}

// MarkReconciling says progress is being made.
func MarkReconciling(conds *[]metav1.Condition, generation int64, reason, msg string) {
	SetCondition(conds, generation, swarmv1.ConditionReady, metav1.ConditionFalse, reason, msg)
	SetCondition(conds, generation, swarmv1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(conds, swarmv1.ConditionStalled)
}

// MarkFailed says the object is not ready; stalled when only the user can fix it.
func MarkFailed(conds *[]metav1.Condition, generation int64, reason, msg string, stalled bool) {
	SetCondition(conds, generation, swarmv1.ConditionReady, metav1.ConditionFalse, reason, msg)
	meta.RemoveStatusCondition(conds, swarmv1.ConditionReconciling)
	if stalled {
		SetCondition(conds, generation, swarmv1.ConditionStalled, metav1.ConditionTrue, reason, msg)
	} else {
		meta.RemoveStatusCondition(conds, swarmv1.ConditionStalled)
	}
}

// StatusChanged tells whether writing status b over a would change what the API server
// holds. Both are compared as the server stores them, after a JSON round trip: a time
// keeps whole seconds there (Swarm's timestamps have nanoseconds, and a status that
// carries one would otherwise look changed on every pass and be patched each time).
func StatusChanged(a, b any) bool {
	if equality.Semantic.DeepEqual(a, b) {
		return false
	}
	ra, errA := asStored(a)
	rb, errB := asStored(b)
	if errA != nil || errB != nil {
		return true // cannot tell: writing is always safe
	}
	return !equality.Semantic.DeepEqual(ra, rb)
}

// asStored returns v as the API server would return it: encoded to JSON and decoded
// into a new value of the same type.
func asStored(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := reflect.New(reflect.TypeOf(v))
	if err := json.Unmarshal(data, out.Interface()); err != nil {
		return nil, err
	}
	return out.Elem().Interface(), nil
}

// Jitter spreads periodic resyncs so many objects do not hit the swarm at once.
func Jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

func DurationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// SendNonBlocking drops the event when the queue is full: the periodic resync catches up,
// and a slow controller must never stall the shared event stream.
func SendNonBlocking(ch chan event.GenericEvent, obj client.Object) {
	select {
	case ch <- event.GenericEvent{Object: obj}:
	default:
	}
}

// Connect opens the swarm of the SwarmCluster `name` in `namespace`: ErrClusterGone when
// it does not exist, an error naming why when its status says it is not ready (the
// cluster watch brings the caller back), else the pooled connection.
func Connect(ctx context.Context, c client.Reader, swarms Swarms, namespace, name string) (swarm.Swarm, error) {
	var cluster swarmv1.SwarmCluster
	if err := c.Get(ctx, ktypes.NamespacedName{Namespace: namespace, Name: name}, &cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %q", ErrClusterGone, name)
		}
		return nil, err
	}
	if err := ClusterNotReady(&cluster); err != nil {
		return nil, err
	}
	conn, err := swarms.Open(ctx, c, &cluster)
	if err != nil {
		return nil, fmt.Errorf("SwarmCluster %q: %w", cluster.Name, err)
	}
	return conn, nil
}
