package reconcile

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/testkit"
)

// tlsSecretData is a TLS Secret's data that a Conn accepts (it connects lazily).
func tlsSecretData(t *testing.T, cn string) map[string][]byte {
	t.Helper()
	ca, cert, key, err := sandbox.ClientTLS(cn)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"ca.crt": ca, "tls.crt": cert, "tls.key": key}
}

// TestPooledConnectionIsReusedUntilItsTLSSecretChanges: a stack's reconcile opens its
// cluster's swarm; with the Secret's version unchanged that costs no read of the
// Secret's data from the API server, and a new version of the Secret is read and used.
func TestPooledConnectionIsReusedUntilItsTLSSecretChanges(t *testing.T) {
	ctx := context.Background()
	cluster := tlsCluster("prod-tls")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cluster.Namespace, Name: "prod-tls"}, Data: tlsSecretData(t, "one")}
	var secretReads atomic.Int32
	c := fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).WithObjects(secret).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, full := obj.(*corev1.Secret); full {
				secretReads.Add(1)
			}
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	hub := swarm.NewHub(logr.Discard())
	t.Cleanup(hub.Close)
	swarms := NewHubSwarms(hub, c)

	open := func() swarm.Swarm {
		t.Helper()
		conn, err := swarms.Open(ctx, c, cluster)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	first := open()
	for range 3 {
		if open() != first {
			t.Fatal("the same cluster and Secret gave another connection")
		}
	}
	if n := secretReads.Load(); n != 1 {
		t.Fatalf("four opens read the TLS Secret %d times, want once", n)
	}

	secret.Data = tlsSecretData(t, "two")
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if open() == first {
		t.Fatal("a changed TLS Secret kept the old connection")
	}
	if n := secretReads.Load(); n != 2 {
		t.Fatalf("the changed Secret was read %d times in all, want 2", n)
	}

	swarms.Forget(client.ObjectKeyFromObject(cluster))
	open()
	if n := secretReads.Load(); n != 3 {
		t.Fatalf("after Forget the Secret was read %d times in all, want 3", n)
	}
}
