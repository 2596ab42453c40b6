package controllers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

func clusterReady(t *testing.T, c *swarmv1.SwarmCluster, check func(*swarmv1.SwarmCluster) string) func() string {
	return func() string {
		get(t, c)
		ready := condition(c.Status.Conditions, swarmv1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionTrue {
			return "not Ready: " + describeConditions(c.Status.Conditions)
		}
		if check != nil {
			return check(c)
		}
		return ""
	}
}

func TestClusterReportsHealthOverMutualTLS(t *testing.T) {
	_, cluster := newNamespace(t, "cluster-health")
	eventually(t, 30*time.Second, "cluster Ready with the sandbox's counts", clusterReady(t, cluster, func(c *swarmv1.SwarmCluster) string {
		m, n := c.Status.Managers, c.Status.Nodes
		switch {
		case m == nil || n == nil:
			return "no counts yet"
		case m.Total != 3 || m.Reachable != 3 || m.Quorum != 2 || m.FaultTolerance != 1 || m.Leader == "":
			return fmt.Sprintf("managers %+v", *m)
		case n.Total != 5 || n.Ready != 5:
			return fmt.Sprintf("nodes %+v", *n)
		case c.Status.SwarmID == "" || c.Status.APIVersion == "" || c.Status.Endpoint != cluster.Spec.Endpoints[0]:
			return fmt.Sprintf("swarmID %q apiVersion %q endpoint %q", c.Status.SwarmID, c.Status.APIVersion, c.Status.Endpoint)
		}
		return ""
	}))
	warn := condition(cluster.Status.Conditions, swarmv1.ConditionManagerWarning)
	if warn == nil || warn.Status != metav1.ConditionFalse {
		t.Errorf("3 managers must not warn: %+v", warn)
	}
}

func TestClusterRefusesWithoutValidClientCertificate(t *testing.T) {
	ctx := context.Background()
	ns, _ := newNamespace(t, "cluster-tls")
	// A client certificate from another CA: the daemons must refuse it.
	strangerCert, strangerKey := selfSignedClientCert(t)
	secret := tlsSecret(ns, "stranger-tls", bed.Swarm.CACertPEM, strangerCert, strangerKey)
	if err := bed.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	bad := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stranger"},
		Spec: swarmv1.SwarmClusterSpec{
			Endpoints:    []string{bed.Swarm.Managers()[0].Endpoint},
			TLSSecretRef: &swarmv1.LocalObjectReference{Name: secret.Name},
		},
	}
	if err := bed.Client.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	plain := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"},
		Spec:       swarmv1.SwarmClusterSpec{Endpoints: []string{bed.Swarm.Managers()[0].Endpoint}},
	}
	if err := bed.Client.Create(ctx, plain); err != nil {
		t.Fatal(err)
	}
	missing := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing"},
		Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{bed.Swarm.Managers()[0].Endpoint},
			TLSSecretRef: &swarmv1.LocalObjectReference{Name: "nope"}},
	}
	if err := bed.Client.Create(ctx, missing); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[*swarmv1.SwarmCluster]string{bad: swarmv1.ReasonTLSError, plain: swarmv1.ReasonInvalidSpec, missing: swarmv1.ReasonSecretNotFound} {
		eventually(t, 30*time.Second, c.Name+" refused with "+want, func() string {
			get(t, c)
			ready := condition(c.Status.Conditions, swarmv1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != want {
				return describeConditions(c.Status.Conditions)
			}
			return ""
		})
	}
	// The missing Secret appears: the cluster connects without any other change.
	if err := bed.Client.Create(ctx, tlsSecret(ns, "nope", bed.Swarm.CACertPEM, bed.Swarm.ClientCertPEM, bed.Swarm.ClientKeyPEM)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "cluster Ready once its Secret exists", clusterReady(t, missing, nil))
}

func TestClusterFailsOverWhenTheManagerInUseStops(t *testing.T) {
	_, cluster := newNamespace(t, "cluster-failover")
	eventually(t, 30*time.Second, "cluster Ready", clusterReady(t, cluster, nil))
	inUse := bed.Swarm.Managers()[0]
	if cluster.Status.Endpoint != inUse.Endpoint {
		t.Fatalf("endpoint in use %q, want the first one %q", cluster.Status.Endpoint, inUse.Endpoint)
	}
	// Stop the manager in use, and make it the leader first when it is not, so the
	// harder case is the one tested.
	ctx := context.Background()
	if err := inUse.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inUse.Start(context.Background()) })
	eventually(t, 60*time.Second, "cluster Ready through another manager with one unreachable", clusterReady(t, cluster, func(c *swarmv1.SwarmCluster) string {
		m := c.Status.Managers
		if c.Status.Endpoint == inUse.Endpoint || m == nil || m.Reachable != 2 || m.Total != 3 || m.Leader == inUse.Name {
			return fmt.Sprintf("endpoint %s managers %+v", c.Status.Endpoint, m)
		}
		return ""
	}))
	if err := inUse.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "manager count recovered", clusterReady(t, cluster, func(c *swarmv1.SwarmCluster) string {
		if m := c.Status.Managers; m == nil || m.Reachable != 3 {
			return fmt.Sprintf("managers %+v", m)
		}
		return ""
	}))
}

func TestClusterSaysQuorumIsLostWhenTwoOfThreeManagersStop(t *testing.T) {
	_, cluster := newNamespace(t, "cluster-quorum")
	eventually(t, 30*time.Second, "cluster Ready", clusterReady(t, cluster, nil))
	ctx := context.Background()
	stopped := bed.Swarm.Managers()[1:]
	for _, n := range stopped {
		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		for _, n := range stopped {
			if err := n.Start(context.Background()); err != nil {
				t.Errorf("restarting %s: %v", n.Name, err)
			}
		}
	}
	t.Cleanup(restart)
	eventually(t, 90*time.Second, "Ready=False saying quorum is lost", func() string {
		get(t, cluster)
		ready := condition(cluster.Status.Conditions, swarmv1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != swarmv1.ReasonQuorumLost || !strings.Contains(strings.ToLower(ready.Message), "quorum") {
			return describeConditions(cluster.Status.Conditions)
		}
		return ""
	})
	restart()
	eventually(t, 120*time.Second, "cluster Ready again with 3 managers", clusterReady(t, cluster, func(c *swarmv1.SwarmCluster) string {
		if m := c.Status.Managers; m == nil || m.Reachable != 3 {
			return fmt.Sprintf("managers %+v", m)
		}
		return ""
	}))
}

// selfSignedClientCert makes a client certificate no sandbox daemon trusts.
func selfSignedClientCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stranger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
