package reconcile

// The shared helpers: opening a cluster (its TLS Secret), cluster readiness, condition
// bookkeeping, status patches, timing, and the Redactor.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/testkit"
)

func tlsCluster(secret string) *swarmv1.SwarmCluster {
	c := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "tls", Name: "prod"}}
	c.Spec.Endpoints = []string{"tcp://manager1:2376"}
	if secret != "" {
		c.Spec.TLSSecretRef = &swarmv1.LocalObjectReference{Name: secret}
	}
	return c
}

func TestConnectClusterChecksTheTLSSecretBeforeConnecting(t *testing.T) {
	full := map[string][]byte{"ca.crt": []byte("ca"), "tls.crt": []byte("cert"), "tls.key": []byte("key")}
	for _, tc := range []struct {
		name    string
		data    map[string][]byte // nil: no Secret at all
		missing string
	}{
		{"no Secret", nil, `TLS Secret "prod-tls" does not exist`},
		{"no ca.crt", tlsDataWithout(full, "ca.crt"), `has no key "ca.crt"`},
		{"no tls.crt", tlsDataWithout(full, "tls.crt"), `has no key "tls.crt"`},
		{"no tls.key", tlsDataWithout(full, "tls.key"), `has no key "tls.key"`},
		{"empty tls.key", tlsDataWith(full, "tls.key", nil), `has no key "tls.key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []client.Object
			if tc.data != nil {
				objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tls", Name: "prod-tls"}, Data: tc.data})
			}
			hub := swarm.NewHub(logr.Discard())
			defer hub.Close()
			conn, err := ConnectCluster(context.Background(), testkit.Client(t, objs...), hub, tlsCluster("prod-tls"))
			if !errors.Is(err, ErrSecretNotFound) || conn != nil {
				t.Fatalf("ConnectCluster = %v, %v; want ErrSecretNotFound", conn, err)
			}
			if !strings.Contains(err.Error(), tc.missing) {
				t.Errorf("err = %q, want %q", err, tc.missing)
			}
		})
	}
}

func tlsDataWithout(m map[string][]byte, key string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func tlsDataWith(m map[string][]byte, key string, v []byte) map[string][]byte {
	out := tlsDataWithout(m, key)
	out[key] = v
	return out
}

func TestConnectClusterPassesTheKeysToTheHubAndItsErrorsBack(t *testing.T) {
	hub := swarm.NewHub(logr.Discard())
	defer hub.Close()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tls", Name: "prod-tls"},
		Data: map[string][]byte{"ca.crt": []byte("not PEM"), "tls.crt": []byte("cert"), "tls.key": []byte("key")}}
	// The keys reach the TLS setup, which refuses them: a TLS error, not a missing Secret.
	_, err := ConnectCluster(context.Background(), testkit.Client(t, sec), hub, tlsCluster("prod-tls"))
	if !errors.Is(err, swarm.ErrTLS) || errors.Is(err, ErrSecretNotFound) {
		t.Errorf("bad certificate: err = %v, want ErrTLS", err)
	}
	// Without endpoints the hub refuses the target.
	c := tlsCluster("")
	c.Spec.Endpoints = nil
	if _, err := ConnectCluster(context.Background(), testkit.Client(t), hub, c); !errors.Is(err, swarm.ErrInvalid) {
		t.Errorf("no endpoints: err = %v, want ErrInvalid", err)
	}
	// Any other read error is returned as it is, for a retry.
	boom := errors.New("apiserver timeout")
	failing := fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return boom
		}}).Build()
	if _, err := ConnectCluster(context.Background(), failing, hub, tlsCluster("prod-tls")); !errors.Is(err, boom) || errors.Is(err, ErrSecretNotFound) {
		t.Errorf("read error: err = %v, want it returned as it is", err)
	}
}

func TestClusterNotReadyOnlyWhenReadyIsFalseAtTheCurrentGeneration(t *testing.T) {
	mk := func(status metav1.ConditionStatus, observed int64) *swarmv1.SwarmCluster {
		c := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Generation: 2}}
		if status != "" {
			c.Status.Conditions = []metav1.Condition{{Type: swarmv1.ConditionReady, Status: status, Reason: swarmv1.ReasonUnreachable,
				Message: "no endpoint answered", ObservedGeneration: observed}}
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		cluster *swarmv1.SwarmCluster
		notOK   bool
	}{
		{"no status yet", mk("", 0), false},
		{"ready", mk(metav1.ConditionTrue, 2), false},
		{"unknown", mk(metav1.ConditionUnknown, 2), false},
		{"not ready for an older spec", mk(metav1.ConditionFalse, 1), false},
		{"not ready now", mk(metav1.ConditionFalse, 2), true},
	} {
		err := ClusterNotReady(tc.cluster)
		if (err != nil) != tc.notOK {
			t.Errorf("%s: ClusterNotReady = %v, want error %v", tc.name, err, tc.notOK)
		}
		if err != nil && err.Error() != `SwarmCluster "prod" is not ready (Unreachable): no endpoint answered` {
			t.Errorf("%s: message %q", tc.name, err)
		}
	}
}

func TestSetConditionTruncatesLongMessagesToValidUTF8(t *testing.T) {
	var conds []metav1.Condition
	exact := strings.Repeat("a", MaxConditionMessage)
	SetCondition(&conds, 3, "A", metav1.ConditionTrue, "R", exact)
	if got := conds[0].Message; got != exact {
		t.Errorf("a message of exactly the limit was changed (len %d)", len(got))
	}
	if conds[0].ObservedGeneration != 3 || conds[0].Reason != "R" {
		t.Errorf("condition = %+v", conds[0])
	}

	SetCondition(&conds, 3, "A", metav1.ConditionTrue, "R", exact+"b")
	if got := conds[0].Message; len(got) != MaxConditionMessage || !strings.HasSuffix(got, "...") {
		t.Errorf("long message: len %d, suffix %q", len(got), got[len(got)-5:])
	}

	// A cut in the middle of a multi-byte rune drops the partial rune.
	odd := "x" + strings.Repeat("é", MaxConditionMessage) // 'é' is 2 bytes: the cut falls inside one
	SetCondition(&conds, 3, "B", metav1.ConditionFalse, "R", odd)
	got := meta.FindStatusCondition(conds, "B").Message
	if !utf8.ValidString(got) || len(got) > MaxConditionMessage || !strings.HasSuffix(got, "é...") {
		t.Errorf("multi-byte message: valid %v, len %d, tail %q", utf8.ValidString(got), len(got), got[len(got)-8:])
	}
}

func TestMarkHelpersKeepTheKstatusConditionsConsistent(t *testing.T) {
	var conds []metav1.Condition
	status := func(typ string) string {
		if c := meta.FindStatusCondition(conds, typ); c != nil {
			return string(c.Status) + "/" + c.Reason
		}
		return "-"
	}
	check := func(step, ready, reconciling, stalled string) {
		t.Helper()
		if got := [3]string{status(swarmv1.ConditionReady), status(swarmv1.ConditionReconciling), status(swarmv1.ConditionStalled)}; got != [3]string{ready, reconciling, stalled} {
			t.Errorf("%s: Ready, Reconciling, Stalled = %v, want %v", step, got, [3]string{ready, reconciling, stalled})
		}
	}
	MarkFailed(&conds, 1, "Bad", "user error", true)
	check("stalled failure", "False/Bad", "-", "True/Bad")
	MarkReconciling(&conds, 1, "Working", "progress")
	check("reconciling", "False/Working", "True/Working", "-")
	MarkFailed(&conds, 1, "Flaky", "transient", false)
	check("transient failure", "False/Flaky", "-", "-")
	MarkFailed(&conds, 1, "Bad", "user error", true)
	MarkReady(&conds, 2, "Done", "ok")
	check("ready", "True/Done", "-", "-")
	if c := meta.FindStatusCondition(conds, swarmv1.ConditionReady); c.ObservedGeneration != 2 {
		t.Errorf("Ready observedGeneration = %d, want 2", c.ObservedGeneration)
	}
}

func TestPersistStatusWritesOnlyAChangedStatusUnderAnOptimisticLock(t *testing.T) {
	patches := 0
	cluster := tlsCluster("")
	c := fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).WithObjects(cluster).WithStatusSubresource(&swarmv1.SwarmCluster{}).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			patches++
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}}).Build()
	ctx := context.Background()
	var got swarmv1.SwarmCluster
	if err := c.Get(ctx, client.ObjectKeyFromObject(cluster), &got); err != nil {
		t.Fatal(err)
	}
	before := got.DeepCopy()
	if _, err := PersistStatus(ctx, c, &got, before, StatusChanged(before.Status, got.Status), ctrl.Result{}, nil); err != nil || patches != 0 {
		t.Fatalf("unchanged status: err %v, %d patches", err, patches)
	}
	got.Status.SwarmID = "abc"
	if !StatusChanged(before.Status, got.Status) {
		t.Fatal("StatusChanged missed a change")
	}
	if _, err := PersistStatus(ctx, c, &got, before, true, ctrl.Result{}, nil); err != nil || patches != 1 {
		t.Fatalf("changed status: err %v, %d patches", err, patches)
	}
	// A status decided on an older read is dropped, and the object reconciled again.
	stale := before.DeepCopy()
	stale.Status.SwarmID = "stale"
	res, err := PersistStatus(ctx, c, stale, before, true, ctrl.Result{}, nil)
	if err != nil || !res.Requeue { //nolint:staticcheck // Requeue is what a conflict returns
		t.Fatalf("a status written over a newer object: %+v, %v", res, err)
	}
	var after swarmv1.SwarmCluster
	if err := c.Get(ctx, client.ObjectKeyFromObject(cluster), &after); err != nil || after.Status.SwarmID != "abc" {
		t.Errorf("status after patch = %+v, %v", after.Status, err)
	}
	// Semantic comparison: an empty and a nil list are the same status.
	if StatusChanged(swarmv1.SwarmClusterStatus{Conditions: []metav1.Condition{}}, swarmv1.SwarmClusterStatus{}) {
		t.Errorf("empty and nil conditions compare as a change")
	}
}

func TestJitterAddsAtMostATenthAndDurationOrFallsBack(t *testing.T) {
	for range 200 {
		if d := Jitter(10 * time.Second); d < 10*time.Second || d > 11*time.Second {
			t.Fatalf("Jitter(10s) = %v", d)
		}
	}
	if d := Jitter(0); d != 0 {
		t.Errorf("Jitter(0) = %v", d)
	}
	for _, tc := range []struct {
		d    *metav1.Duration
		want time.Duration
	}{
		{nil, time.Minute},
		{&metav1.Duration{}, time.Minute},
		{&metav1.Duration{Duration: -time.Second}, time.Minute},
		{&metav1.Duration{Duration: 5 * time.Second}, 5 * time.Second},
	} {
		if got := DurationOr(tc.d, time.Minute); got != tc.want {
			t.Errorf("DurationOr(%v) = %v, want %v", tc.d, got, tc.want)
		}
	}
}

// TestStatusChangedComparesAsTheAPIServerStores: a time that differs only below the
// second, which the API server does not keep, is no change; any stored difference is.
func TestStatusChangedComparesAsTheAPIServerStores(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	status := func(tm time.Time, image string) swarmv1.SwarmStackStatus {
		t := metav1.NewTime(tm)
		return swarmv1.SwarmStackStatus{Services: []swarmv1.ServiceStatus{{Name: "numbers_api", Image: image, UpdateStartedAt: &t}}}
	}
	read := status(at, "numbers-api:v1")
	if StatusChanged(read, status(at.Add(123456789*time.Nanosecond), "numbers-api:v1")) {
		t.Error("a sub-second difference the API server drops counted as a change")
	}
	if !StatusChanged(read, status(at.Add(time.Second), "numbers-api:v1")) {
		t.Error("a time one second later counted as no change")
	}
	if !StatusChanged(read, status(at, "numbers-api:v2")) {
		t.Error("a new image counted as no change")
	}
	if StatusChanged(swarmv1.SwarmStackStatus{}, swarmv1.SwarmStackStatus{Services: []swarmv1.ServiceStatus{}}) {
		t.Error("an empty list and no list counted as a change")
	}
}
