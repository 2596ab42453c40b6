// Package testkit is what the unit tests of every package share: a scheme with the
// operator's kinds and a fake API server that treats their status as a subresource, as
// the real one does. It is imported by tests only.
package testkit

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// Scheme knows the built-in kinds and the operator's kinds.
func Scheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := swarmv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// ClientBuilder is a fake API server holding objs, with the status subresource on the
// operator's kinds (so Update leaves status alone and Status().Patch only status).
func ClientBuilder(t testing.TB, objs ...client.Object) *fake.ClientBuilder {
	t.Helper()
	return fake.NewClientBuilder().
		WithScheme(Scheme(t)).
		WithStatusSubresource(&swarmv1.SwarmCluster{}, &swarmv1.SwarmStack{}, &swarmv1.SwarmNodeMaintenance{}, &swarmv1.SwarmStackSet{}).
		WithObjects(objs...)
}

// Client is ClientBuilder's client.
func Client(t testing.TB, objs ...client.Object) client.WithWatch {
	t.Helper()
	return ClientBuilder(t, objs...).Build()
}

// JSON is v as JSON, for comparing specs in tests.
func JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
