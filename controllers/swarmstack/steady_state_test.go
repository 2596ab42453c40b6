package swarmstack

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// settle releases v2 of the numbers stack on a clock with sub-second digits, as a real
// Swarm's timestamps have, and lets it complete.
func (e *stackEnv) settleOnSubSecondClock(t *testing.T) {
	t.Helper()
	e.clk.Advance(123456789 * time.Nanosecond)
	e.sw.AutoConverge = true
	e.createStack("numbers", twoServices)
	e.passes("numbers", 3)
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.passes("numbers", 4)
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("the release did not complete: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
	if s := e.stack("numbers"); len(s.Status.Services) == 0 || s.Status.Services[0].UpdateStartedAt == nil {
		t.Fatalf("no service update time in status, the test would not cover it: %+v", s.Status.Services)
	}
}

// TestSteadyStatePassMakesNoAPIWrite: once a stack settled, a pass (a resync, a restart,
// a watch event that changed nothing) writes nothing to the API server and records no
// event, even where Swarm's timestamps have sub-second digits that the API server's
// status drops: compared with what was read, such a time always looked changed, and
// every pass of every stack patched its status.
func TestSteadyStatePassMakesNoAPIWrite(t *testing.T) {
	e := newStackEnv(t)
	e.settleOnSubSecondClock(t)
	_ = e.events()
	e.apiWrites.Reset()
	e.sw.ResetCalls()
	const passes = 3
	for range passes {
		e.clk.Advance(11 * time.Minute) // past the resync interval
		if _, err := e.pass("numbers"); err != nil {
			t.Fatal(err)
		}
	}
	if w := e.apiWrites.Writes(); len(w) > 0 {
		t.Fatalf("steady-state passes wrote to the API server: %v", w)
	}
	if ev := e.events(); len(ev) > 0 {
		t.Fatalf("steady-state passes recorded events: %v", ev)
	}
	var ops []string
	for _, c := range e.sw.Calls() {
		ops = append(ops, string(c.Op))
	}
	if want := slices.Repeat([]string{string(memswarm.OpStackServices)}, passes); !slices.Equal(ops, want) {
		t.Fatalf("%d steady-state passes made the Docker requests %v, want %v", passes, ops, want)
	}
}

// TestSteadyStatePassAsksDockerNothingWithTheServiceCache: with the Swarm's service
// cache synced, a settled stack's pass observes its services from the cache and makes
// no Docker request at all (the cache's periodic list is per Swarm, not per stack).
func TestSteadyStatePassAsksDockerNothingWithTheServiceCache(t *testing.T) {
	e := newStackEnv(t)
	e.settleOnSubSecondClock(t)
	e.useServiceCache(time.Hour)
	e.apiWrites.Reset()
	e.sw.ResetCalls()
	for range 3 {
		e.clk.Advance(11 * time.Minute)
		if _, err := e.pass("numbers"); err != nil {
			t.Fatal(err)
		}
	}
	if calls := e.sw.Calls(); len(calls) > 0 {
		t.Fatalf("steady-state passes with a synced cache asked Docker %v", calls)
	}
	if w := e.apiWrites.Writes(); len(w) > 0 {
		t.Fatalf("steady-state passes wrote to the API server: %v", w)
	}
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}

// TestStaleServiceCacheNeverCausesAWrongReadyNorALostUpdate: with the event stream
// silent (open, sending nothing) and no periodic list in the test's time, the cache
// misses another client's write and the updater's moves. The release of v2 still
// writes at the versions on the Swarm (no version conflict, nothing written over
// unseen), and the stack is not Ready until Swarm completed it.
func TestStaleServiceCacheNeverCausesAWrongReadyNorALostUpdate(t *testing.T) {
	e := newStackEnv(t)
	e.settleOnSubSecondClock(t)
	e.useServiceCache(time.Hour)
	e.sw.AutoConverge = false
	e.sw.SilenceEvents()
	// Another client writes a label: the cache still holds the version before it.
	api, _ := e.sw.Service("numbers_api")
	spec := api.Spec
	spec.Labels["team"] = "numbers"
	if _, err := e.sw.UpdateService(context.Background(), swarm.ServiceWrite{ID: api.ID, Version: api.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	e.sw.ResetCalls()
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v3"))
	e.passes("numbers", 3)
	var updates int
	for _, c := range e.sw.Calls() {
		if c.Op == memswarm.OpUpdateService {
			updates++
			if c.Err != nil {
				t.Fatalf("the release's write of %s failed: %v", c.Target, c.Err)
			}
		}
	}
	if updates == 0 {
		t.Fatal("the release wrote no service")
	}
	if r := e.ready("numbers"); r.Status == metav1.ConditionTrue {
		t.Fatalf("Ready=True while Swarm's update runs: %s: %s", r.Reason, r.Message)
	}
	e.sw.ConvergeAll()
	e.passes("numbers", 2)
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue || !strings.Contains(r.Message, stack.ShortRev(e.stack("numbers").Status.LastAppliedRevision)) {
		t.Fatalf("after Swarm completed v3: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
	for _, name := range []string{"numbers_api", "numbers_web"} {
		svc, _ := e.sw.Service(name)
		if img := svc.Spec.TaskTemplate.ContainerSpec.Image; !strings.HasSuffix(img, ":v3") {
			t.Fatalf("%s runs %s", name, img)
		}
	}
}

// TestPassThatChangesStatusStillWritesIt: the comparison that skips the write of an
// unchanged status still sees a real change (a service's update message here).
func TestPassThatChangesStatusStillWritesIt(t *testing.T) {
	e := newStackEnv(t)
	e.settleOnSubSecondClock(t)
	e.apiWrites.Reset()
	e.sw.SetUpdateState("numbers_api", swarmtypes.UpdateStateCompleted, "update completed again")
	if _, err := e.pass("numbers"); err != nil {
		t.Fatal(err)
	}
	if w := e.apiWrites.Writes(); !slices.Equal(w, []string{"patch *v1alpha1.SwarmStack/numbers/status"}) {
		t.Fatalf("a changed task count wrote %v, want one status patch", w)
	}
}

// BenchmarkSteadyStatePass: what a settled stack's pass costs a new reconciler (as in
// the resync after a restart: the render cache is empty), on the in-memory Swarm and
// the fake API server. "skipped" is the pass as it runs; "forced" clears
// status.inputsDigest before each pass (untimed), so the pass renders as every pass did
// before the digest, and writes the digest back. Per pass it reports the Docker
// requests, API writes and renders; ns/op is the operator's CPU for the pass with no
// network in between. "cached" is "skipped" with the Swarm's service cache synced.
func BenchmarkSteadyStatePass(b *testing.B) {
	for _, mode := range []string{"skipped", "forced", "cached"} {
		b.Run(mode, func(b *testing.B) {
			e := newStackEnv(b)
			e.deployAllInputs()
			if mode == "cached" {
				e.useServiceCache(time.Hour) // the Swarm's service cache, synced
			}
			renders := e.renderCounter()
			e.sw.ResetCalls()
			e.apiWrites.Reset()
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if mode == "forced" {
					b.StopTimer()
					s := e.stack("numbers")
					s.Status.InputsDigest = ""
					if err := e.c.Status().Update(ctx, s); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := e.pass("numbers"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(len(e.sw.Calls()))/n, "docker-requests/pass")
			b.ReportMetric(float64(len(e.apiWrites.Writes()))/n, "api-writes/pass")
			b.ReportMetric(float64(renders())/n, "renders/pass")
		})
	}
}
