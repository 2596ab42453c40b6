package swarm

import (
	"testing"

	"github.com/go-logr/logr"
	ktypes "k8s.io/apimachinery/pkg/types"
)

func TestHubSharesOneConnPerClusterUntilItsTargetChanges(t *testing.T) {
	h := NewHub(logr.Discard())
	defer h.Close()
	key := ktypes.NamespacedName{Namespace: "ns", Name: "prod"}
	target := Target{Endpoints: []string{"unix:///nonexistent/docker.sock"}}
	a, err := h.Connect(key, target)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Connect(key, target)
	if a != b {
		t.Fatal("the same target got a second connection")
	}
	target.Endpoints = append(target.Endpoints, "unix:///nonexistent/other.sock")
	c, _ := h.Connect(key, target)
	if c == a {
		t.Fatal("a changed endpoint list kept the old connection")
	}
	other, _ := h.Connect(ktypes.NamespacedName{Namespace: "ns", Name: "staging"}, target)
	if other == c {
		t.Fatal("two clusters share a connection")
	}
}
