package controllers

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// namingKeyField is the key of the naming key Secret's data.
const namingKeyField = "key"

// defaultNamingKeySecret is where the naming key is kept: the operator's namespace
// (POD_NAMESPACE, set by the Deployment), or "default" for an operator run by hand.
func defaultNamingKeySecret() ktypes.NamespacedName {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "default"
	}
	return ktypes.NamespacedName{Namespace: ns, Name: "swarm-operator-naming-key"}
}

// ensureNamingKey reads the key that every replica of the operator keys secret and
// config names with, creating it on first start. It must outlive the operator's pods:
// a new key would rename, and so roll, every service that uses a secret or config.
func ensureNamingKey(ctx context.Context, c client.Client, reader client.Reader, at ktypes.NamespacedName) ([]byte, error) {
	for range 2 {
		var s corev1.Secret
		err := reader.Get(ctx, at, &s)
		if err == nil {
			if k := s.Data[namingKeyField]; len(k) >= 16 {
				return k, nil
			}
			return nil, fmt.Errorf("naming key Secret %s has no key %q of at least 16 bytes", at, namingKeyField)
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the naming key Secret %s: %w", at, err)
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "swarm-operator"}},
			Data: map[string][]byte{namingKeyField: key},
		}
		err = c.Create(ctx, &s)
		if err == nil {
			return key, nil
		}
		// Another replica created it first: read theirs.
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the naming key Secret %s: %w", at, err)
		}
	}
	return nil, fmt.Errorf("naming key Secret %s: created and gone again", at)
}
