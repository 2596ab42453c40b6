package swarm_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/go-logr/logr"
	ktypes "k8s.io/apimachinery/pkg/types"

	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// The service cache on the in-memory Swarm, whose event stream behaves as Swarm's
// (internal/memswarm/contract_test.go checks it against a real one), with the faults a
// stream and its reads meet.

var cluster = ktypes.NamespacedName{Namespace: "apps", Name: "prod"}

// cacheEnv is a hub following one in-memory Swarm, and the events it passed on.
type cacheEnv struct {
	t    *testing.T
	m    *memswarm.Swarm
	view *swarm.Cached

	mu     sync.Mutex
	events []swarm.Event
	// atPublish is, per service named by a published event, the newest version the
	// cache served when the event was passed on.
	atPublish map[string]uint64
}

func newCacheEnv(t *testing.T, relist time.Duration) *cacheEnv {
	t.Helper()
	m := memswarm.New()
	m.AddNode("manager1", swarmtypes.NodeRoleManager)
	e := &cacheEnv{t: t, m: m, atPublish: map[string]uint64{}}
	for _, name := range []string{"numbers_api", "numbers_web", "other_db"} {
		e.create(name)
	}
	hub := swarm.NewHub(logr.Discard())
	hub.ServiceRelist = relist
	hub.Subscribe(func(ev swarm.Event) {
		var version uint64
		e.mu.Lock()
		view := e.view
		e.mu.Unlock()
		if view != nil && ev.Type == events.ServiceEventType {
			stack, _, _ := cutStack(ev.Attributes["name"])
			svcs, _ := view.Cache.StackServices(stack)
			for _, s := range svcs {
				if s.Spec.Name == ev.Attributes["name"] {
					version = s.Version.Index
				}
			}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.events = append(e.events, ev)
		if n := ev.Attributes["name"]; version > e.atPublish[n] {
			e.atPublish[n] = version
		}
	})
	t.Cleanup(hub.Close)
	e.mu.Lock()
	e.view = hub.Attach(cluster, m)
	e.mu.Unlock()
	e.await("the first list", func() bool { return e.view.Cache.Synced() })
	return e
}

// create makes a service on the Swarm behind the operator's back.
func (e *cacheEnv) create(name string) string {
	e.t.Helper()
	stack, _, _ := cutStack(name)
	one := uint64(1)
	res, err := e.m.CreateService(context.Background(), swarm.ServiceWrite{Spec: swarmtypes.ServiceSpec{
		Annotations:  swarmtypes.Annotations{Name: name, Labels: map[string]string{memswarm.StackLabel: stack}},
		TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "numbers-api:v1"}},
		Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &one}},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.ID
}

func cutStack(name string) (stack, svc string, ok bool) {
	for i := range name {
		if name[i] == '_' {
			return name[:i], name[i+1:], true
		}
	}
	return name, "", false
}

// update writes a new image to the service through sw, at the version it has now.
func (e *cacheEnv) update(sw swarm.Swarm, name, image string) uint64 {
	e.t.Helper()
	svc, _ := e.m.Service(name)
	spec := svc.Spec
	spec.TaskTemplate.ContainerSpec.Image = image
	if _, err := sw.UpdateService(context.Background(), swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: spec}); err != nil {
		e.t.Fatal(err)
	}
	now, _ := e.m.Service(name)
	return now.Version.Index
}

// observe is the stack pass's read: the stack's services, and whether the cache gave them.
func (e *cacheEnv) observe(stack string) (map[string]swarmtypes.Service, bool) {
	e.t.Helper()
	svcs, cached, err := swarm.ObserveStackServices(context.Background(), e.view, stack)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]swarmtypes.Service{}
	for _, s := range svcs {
		out[s.Spec.Name] = s
	}
	return out, cached
}

// await waits for cond, which the cache's goroutines make true; a bound only against a
// hang, not a timing assertion.
func (e *cacheEnv) await(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// dockerCalls are the port calls made since the last reset, less the event stream.
func (e *cacheEnv) dockerCalls() []string {
	var out []string
	for _, c := range e.m.Calls() {
		out = append(out, fmt.Sprintf("%s %s", c.Op, c.Target))
	}
	return out
}

func (e *cacheEnv) published(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.events, func(ev swarm.Event) bool { return ev.Attributes["name"] == name })
}

// TestSyncedCacheServesAStackWithoutDockerRequests: once listed, a stack's services
// come from the cache, with their task counts, and reading them asks Docker nothing.
func TestSyncedCacheServesAStackWithoutDockerRequests(t *testing.T) {
	e := newCacheEnv(t, time.Hour)
	e.m.ResetCalls()
	for range 3 {
		svcs, cached := e.observe("numbers")
		if !cached || len(svcs) != 2 || svcs["numbers_api"].ServiceStatus == nil || svcs["numbers_api"].ServiceStatus.DesiredTasks != 1 {
			t.Fatalf("cached %v, services %+v", cached, svcs)
		}
	}
	if calls := e.dockerCalls(); len(calls) > 0 {
		t.Fatalf("three reads from a synced cache asked Docker %v", calls)
	}
	// What a caller does with its copy is not the cache's.
	svcs, _ := e.observe("numbers")
	svcs["numbers_api"].Spec.Labels["x"] = "y"
	if again, _ := e.observe("numbers"); again["numbers_api"].Spec.Labels["x"] != "" {
		t.Fatal("a caller's change reached the cache")
	}
}

// TestServiceEventsKeepTheCacheCurrentBeforeTheyArePassedOn: another client's update,
// create and removal reach the cache from the events, each by one read of that service;
// a subscriber hears of a change only once the cache holds it, so the pass it wakes
// sees it.
func TestServiceEventsKeepTheCacheCurrentBeforeTheyArePassedOn(t *testing.T) {
	e := newCacheEnv(t, time.Hour)
	e.m.ResetCalls()
	want := e.update(e.m, "numbers_api", "numbers-api:v2")
	e.await("the event passed on", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.atPublish["numbers_api"] > 0
	})
	e.mu.Lock()
	got := e.atPublish["numbers_api"]
	e.mu.Unlock()
	if got != want {
		t.Fatalf("the update's event was passed on while the cache served version %d, not %d", got, want)
	}
	e.create("numbers_worker")
	e.await("the created service in the cache", func() bool {
		svcs, cached := e.observe("numbers")
		return cached && len(svcs) == 3
	})
	if err := e.m.RemoveService(context.Background(), "numbers_web"); err != nil {
		t.Fatal(err)
	}
	e.await("the removal in the cache", func() bool {
		svcs, cached := e.observe("numbers")
		_, web := svcs["numbers_web"]
		return cached && len(svcs) == 2 && !web
	})
	for _, c := range e.m.Calls() {
		if c.Op == memswarm.OpAllServices || c.Op == memswarm.OpStackServices {
			t.Fatalf("an event made the cache list services: %v", e.dockerCalls())
		}
	}
}

// TestSilentStreamStalenessIsBoundedByThePeriodicRelist: a stream that stays open and
// sends nothing hides another client's change only until the next periodic list, and
// never hides the operator's own write: the stack is read from Docker until the cache
// has seen it.
func TestSilentStreamStalenessIsBoundedByThePeriodicRelist(t *testing.T) {
	e := newCacheEnv(t, 50*time.Millisecond)
	e.m.SilenceEvents()
	theirs := e.update(e.m, "numbers_api", "numbers-api:v2")
	e.await("the periodic list to bring the change", func() bool {
		svcs, cached := e.observe("numbers")
		return cached && svcs["numbers_api"].Version.Index == theirs
	})
	e.await("the list to pass on the change no event said", func() bool { return e.published("numbers_api") })

	ours := e.update(e.view, "numbers_web", "numbers-api:v2")
	for {
		svcs, cached := e.observe("numbers")
		if got := svcs["numbers_web"].Version.Index; got < ours {
			t.Fatalf("after the operator wrote version %d the pass observed %d (cached %v)", ours, got, cached)
		}
		if cached {
			break // a list after the write has it
		}
	}
}

// TestOutOfOrderAndDuplicatedEventsNeverTakeTheCacheBack: events that arrive late,
// twice or reversed only cause reads; what the cache holds follows the versions, not
// the order of the events.
func TestOutOfOrderAndDuplicatedEventsNeverTakeTheCacheBack(t *testing.T) {
	e := newCacheEnv(t, time.Hour)
	e.m.HoldEvents()
	var last uint64
	for _, v := range []string{"v2", "v3", "v4"} {
		last = e.update(e.m, "numbers_api", "numbers-api:"+v)
	}
	e.m.ReleaseEvents(func(ms []events.Message) []events.Message {
		out := slices.Clone(ms)
		slices.Reverse(out)
		return append(out, ms...) // and each one again
	})
	e.await("the last version in the cache", func() bool {
		svcs, _ := e.observe("numbers")
		return svcs["numbers_api"].Version.Index == last
	})
	e.m.ResetCalls()
	// Late duplicates of old events read the current state again, never an old one.
	e.m.HoldEvents()
	e.update(e.m, "other_db", "numbers-api:v2")
	e.m.ReleaseEvents(func(ms []events.Message) []events.Message { return append(ms, ms...) })
	e.await("the reads of the duplicates", func() bool { return len(e.m.Calls()) >= 2 })
	if svcs, _ := e.observe("numbers"); svcs["numbers_api"].Version.Index != last {
		t.Fatalf("numbers_api went from version %d to %d", last, svcs["numbers_api"].Version.Index)
	}
}

// TestRelistRacingAWriteNeverServesOlderThanTheWrite: a full list that read the Swarm
// before the operator's update and removal, and answered after them, takes back neither:
// the updated service is never observed older than the write, the removed one never
// comes back.
func TestRelistRacingAWriteNeverServesOlderThanTheWrite(t *testing.T) {
	e := newCacheEnv(t, time.Hour)
	release := e.m.Delay(memswarm.OpAllServices, 1)
	e.view.Cache.Relist()
	e.await("the list to read the swarm", func() bool {
		return slices.ContainsFunc(e.m.Calls(), func(c memswarm.Call) bool { return c.Op == memswarm.OpAllServices })
	})
	ours := e.update(e.view, "numbers_api", "numbers-api:v2")
	web, _ := e.m.Service("numbers_web")
	if err := e.view.RemoveService(context.Background(), web.ID); err != nil {
		t.Fatal(err)
	}
	check := func() bool {
		svcs, cached := e.observe("numbers")
		if got := svcs["numbers_api"].Version.Index; got < ours {
			t.Fatalf("after the write of version %d the pass observed %d (cached %v)", ours, got, cached)
		}
		if _, back := svcs["numbers_web"]; back {
			t.Fatalf("the removed service was observed again (cached %v)", cached)
		}
		return cached
	}
	check()
	release()
	e.await("the cache to serve the stack again", check)
	check()
}

// TestStreamGapIsRelistedAndWakesTheChangedStacks: while the stream is down the stack
// is read from Docker; after it is back, a list syncs the cache and passes on the
// changes made during the gap, which no event said.
func TestStreamGapIsRelistedAndWakesTheChangedStacks(t *testing.T) {
	e := newCacheEnv(t, time.Hour)
	e.m.SilenceEvents() // the change of the gap sends nothing
	theirs := e.update(e.m, "other_db", "numbers-api:v2")
	e.m.EndEventStreams()
	e.m.ResumeEvents()
	e.await("the relist after the reconnection", func() bool {
		svcs, cached := e.observe("other")
		return cached && svcs["other_db"].Version.Index == theirs
	})
	e.await("the change passed on", func() bool { return e.published("other_db") })
}

// TestCacheServesTheStackServicesTheManagerLists: the cache and a manager's list agree
// on which services are a stack's (swarm.StackOfService): not one labelled with the
// stack but named otherwise, nor one of a stack whose name starts with this one's.
func TestCacheServesTheStackServicesTheManagerLists(t *testing.T) {
	e := newCacheEnv(t, time.Hour)
	for name, stack := range map[string]string{"numbers-handmade": "numbers", "numbers_x_api": "numbers_x"} {
		spec := swarmtypes.ServiceSpec{
			Annotations:  swarmtypes.Annotations{Name: name, Labels: map[string]string{memswarm.StackLabel: stack}},
			TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "numbers-api:v1"}},
		}
		if _, err := e.m.CreateService(context.Background(), swarm.ServiceWrite{Spec: spec}); err != nil {
			t.Fatal(err)
		}
		e.await(name+" in the cache", func() bool { return e.published(name) })
	}
	names := func(svcs []swarmtypes.Service) []string {
		var out []string
		for _, s := range svcs {
			out = append(out, s.Spec.Name)
		}
		return out
	}
	cached, ok := e.view.Cache.StackServices("numbers")
	listed, err := e.m.StackServices(context.Background(), "numbers")
	if !ok || err != nil {
		t.Fatalf("cache served %v, manager %v", ok, err)
	}
	want := []string{"numbers_api", "numbers_web"}
	if !slices.Equal(names(cached), want) || !slices.Equal(names(listed), want) {
		t.Fatalf("stack numbers: cache %v, manager %v, want %v", names(cached), names(listed), want)
	}
}
