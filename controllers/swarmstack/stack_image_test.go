package swarmstack

import (
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
)

// Image automation writes tags and digests into the compose file in Git; Swarm resolves
// tags to digests when it is asked to. Neither may look like a change that is not one.

// TestTagSwarmResolvedToADigestIsNoDriftAndThePinnedDigestNoRollout: a tag Swarm pinned
// to its digest is not taken for a change made outside the operator, a commit that pins
// that same digest restarts no task, and a commit that pins another digest rolls out.
func TestTagSwarmResolvedToADigestIsNoDriftAndThePinnedDigestNoRollout(t *testing.T) {
	digestA, digestB := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	amd64 := []swarmtypes.Platform{{Architecture: "amd64", OS: "linux"}}
	e := newStackEnv(t)
	e.sw.Registry = map[string]memswarm.RegistryImage{
		"numbers-api:v1":   {Digest: digestA, Platforms: amd64},
		"numbers-api:v1.1": {Digest: digestB, Platforms: amd64},
		"numbers-web:v1":   {Digest: "sha256:" + strings.Repeat("c", 64)},
	}
	e.sw.AutoConverge = true
	e.createStack("numbers", twoServices, func(s *swarmv1.SwarmStack) { s.Spec.ResolveImage = "changed" })
	e.passes("numbers", 3)
	e.sw.AutoConverge = false
	if got := e.image("numbers_api"); got != "numbers-api:v1@"+digestA {
		t.Fatalf("Swarm did not resolve the tag: %s", got)
	}
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("v1: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
	e.events()

	before := e.writes()
	e.clk.Advance(time.Hour)
	e.passes("numbers", 3)
	if w := e.sw.Writes()[before:]; len(w) > 0 {
		t.Fatalf("the resolved digest was taken for a change: %+v", w)
	}
	for _, ev := range e.events() {
		if strings.Contains(ev, swarmv1.EventDriftCorrected) {
			t.Fatalf("false drift: %s", ev)
		}
	}

	// The image automation pins the digest Swarm resolved: a new revision, no new tasks,
	// also when the registry is no longer asked (the digest is in Git now).
	pinnedA := strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v1@"+digestA)
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Compose.Files[0].Inline = &pinnedA
		s.Spec.ResolveImage = "never"
	})
	e.passes("numbers", 3)
	api := mustService(t, e.sw, "numbers_api")
	if api.UpdateStatus != nil {
		t.Fatalf("pinning the running digest restarted tasks: %+v", api.UpdateStatus)
	}
	if got := e.image("numbers_api"); got != "numbers-api:v1@"+digestA {
		t.Fatalf("image %s", got)
	}
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("same digest: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}

	// Another digest is another image.
	e.release(strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v1@"+digestB))
	e.passes("numbers", 1)
	api = mustService(t, e.sw, "numbers_api")
	if api.UpdateStatus == nil || api.UpdateStatus.State != swarmtypes.UpdateStateUpdating || e.image("numbers_api") != "numbers-api:v1@"+digestB {
		t.Fatalf("the new digest did not roll out: image %s, status %+v", e.image("numbers_api"), api.UpdateStatus)
	}
	e.sw.ConvergeAll()
	e.passes("numbers", 2)
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("new digest: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}
