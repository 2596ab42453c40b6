package controllers

import (
	"bytes"
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

func TestNamingKeyIsCreatedOnceAndKeptAcrossRestarts(t *testing.T) {
	c := testenv.IndexedClient(t)
	at := ktypes.NamespacedName{Namespace: "ops", Name: "swarm-operator-naming-key"}
	first, err := ensureNamingKey(context.Background(), c, c, at)
	if err != nil || len(first) != 32 {
		t.Fatalf("first start: %d bytes, %v", len(first), err)
	}
	again, err := ensureNamingKey(context.Background(), c, c, at)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("a restart must keep the key (names would change and services roll): %v", err)
	}
}

func TestNamingKeyTooShortIsRefused(t *testing.T) {
	c := testenv.IndexedClient(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "k"}, Data: map[string][]byte{namingKeyField: []byte("short")}})
	if _, err := ensureNamingKey(context.Background(), c, c, ktypes.NamespacedName{Namespace: "ops", Name: "k"}); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}
