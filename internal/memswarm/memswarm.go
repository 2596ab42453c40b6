// Package memswarm is an in-memory Docker Swarm that implements swarm.Swarm, for tests
// of the controllers that need no Docker at all.
//
// What it models, as Swarm does it (contract_test.go runs the same scenarios against a
// real sandbox Swarm so the two cannot drift apart):
//   - services: unique names, versions that change on every write (one counter for the
//     whole swarm, like Raft's index), optimistic concurrency (a write at a stale version
//     fails with swarm.ErrVersionConflict), PreviousSpec, manual rollback that swaps the
//     specs, UpdateStatus as Swarm's updater reports it (at the write, or
//     later with LaggingUpdater), task counts;
//   - nodes with roles, leader, reachability, state, labels and availability, written
//     compare-and-swap as Conn does;
//   - tasks, networks, secrets and configs, with Docker's conflict, not-found and in-use
//     errors (typed as Docker's client types them: errdefs Conflict, NotFound, ...);
//   - service events, as Swarm sends them (events.go): a create, each write to a service
//     (its updater's included), a removal; none for tasks. A test can end the streams,
//     silence them (open, sending nothing), or hold events back and release them
//     reordered or repeated;
//   - a log of every port call, and faults a test injects per operation: a failure, a
//     lost answer, a hang, an answer delayed until released, and a fail-over retry on
//     another manager as Conn performs it.
//   - the round trip to a remote manager, as a latency per exchange (Latency), for
//     simulations of many swarms.
//
// What it does not: there is no scheduler, orchestrator nor updater. Tasks exist only
// where the test places them (AddTask), a rollout moves only when the test says so
// (SetUpdateState, SetRunning, Converge, or AutoConverge), and a drained node keeps its
// tasks until EvacuateDrained. Placement constraints, resources, ports, VIPs and registry
// auth are not looked at; image references are written as Docker's client writes them
// (:latest added, a digest pinned from Registry when the write resolves images). Job
// services count 0 desired tasks; every write of one starts a new run (jobs.go).
package memswarm

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	"github.com/swarmops/swarm-operator/internal/swarm"
)

// StackLabel is the label docker stack deploy puts on a stack's objects.
const StackLabel = swarm.StackLabel

// Swarm is an in-memory swarm. The zero value is not usable: call New. It is safe for
// concurrent use; set the exported fields before sharing it.
type Swarm struct {
	// Now is the clock of every timestamp (default time.Now).
	Now func() time.Time
	// AutoConverge makes every successful write finish at once, as if Swarm's updater
	// and scheduler were instantaneous: services converge (ConvergeAll) and drained
	// nodes are evacuated (EvacuateDrained). Handy for happy-path tests.
	AutoConverge bool
	// ID is the swarm's ID, as Health reports it (default "memswarm").
	ID string
	// APIVersion is what Health reports as negotiated (default "1.51").
	APIVersion string
	// Latency is added to every exchange with a manager, as the round trip to a remote
	// one would be (simulations; default none). It is waited out without holding the
	// swarm's lock, so concurrent calls overlap as they do on a real manager, and a
	// call whose context ends meanwhile returns the context's error.
	Latency time.Duration
	// LaggingUpdater leaves a write that must replace tasks without an UpdateStatus until
	// StartUpdates, as a busy manager's updater picks it up seconds later: Swarm clears
	// the status on the write and sets it only once the updater starts.
	LaggingUpdater bool
	// Registry is what a registry answers to a write that resolves images
	// (QueryRegistry), by familiar reference ("numbers-api:v1"). Without an entry the
	// write keeps the tag and warns, as on a Swarm that cannot reach its registry.
	Registry map[string]RegistryImage

	mu       sync.Mutex
	index    uint64 // last version handed out; shared by all objects like Raft's index
	seq      int    // last object number, for IDs
	services map[string]*service
	nodes    map[string]*swarmtypes.Node // by hostname
	tasks    []*swarmtypes.Task
	networks map[string]*netObj
	secrets  map[string]*swarmtypes.Secret
	configs  map[string]*swarmtypes.Config
	// secretData is what each secret was created with, by name: the port never reads it
	// back (Swarm does not), a test does through SecretData.
	secretData map[string][]byte
	current    string // hostname of the manager Conn would talk to

	calls  []Call
	counts map[Op]int
	faults map[Op][]fault
	// The event streams open (events.go) and what a test did to them.
	subs   []*subscriber
	events eventFaults
}

type service struct {
	swarmtypes.Service
	running uint64
	// stack is the service's stack (swarm.StackOfService; setSpec keeps it): a stack's
	// service list compares it for every service of the swarm, and a label lookup in
	// each spec's map cost a simulation more than the rest of the call.
	stack string
	// updatePending: the updater has yet to start on the last write (LaggingUpdater).
	updatePending bool
}

// setSpec writes the service's spec and what is derived from it.
func (s *service) setSpec(spec swarmtypes.ServiceSpec) {
	s.Spec = spec
	s.stack = swarm.StackOfService(spec)
	s.Endpoint.Spec = endpointSpec(spec)
}

type netObj struct {
	swarm.Object
	Scope string
}

// New returns an empty swarm: no nodes (every call then answers as from one implicit
// manager), no services.
func New() *Swarm {
	return &Swarm{
		Now:        time.Now,
		ID:         "memswarm",
		APIVersion: "1.51",
		services:   map[string]*service{},
		nodes:      map[string]*swarmtypes.Node{},
		networks:   map[string]*netObj{},
		secrets:    map[string]*swarmtypes.Secret{},
		configs:    map[string]*swarmtypes.Config{},
		counts:     map[Op]int{},
		faults:     map[Op][]fault{},
	}
}

var _ swarm.Swarm = (*Swarm)(nil)

func (m *Swarm) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

// nextVersion hands out a new version and the time of the write.
func (m *Swarm) nextVersion() (swarmtypes.Version, time.Time) {
	m.index++
	return swarmtypes.Version{Index: m.index}, m.now()
}

func (m *Swarm) newID(kind string) string {
	m.seq++
	return fmt.Sprintf("%s-%d", kind, m.seq)
}

// clone deep-copies through JSON, as the Docker API does: callers never share memory
// with the fake, and what they read compares with reflect.DeepEqual as real answers do.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("memswarm: clone: %v", err))
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("memswarm: clone: %v", err))
	}
	return out
}

// sameJSON compares two values as Swarm would after a round trip through its API.
func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func sortedKeys[V any](mp map[string]V) []string {
	keys := make([]string, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// run performs one port call: it records it, applies the fault planned for it, if any,
// and otherwise checks that a manager answers and applies the call.
func (m *Swarm) run(ctx context.Context, op Op, target string, apply func() error) error {
	err := m.do(ctx, op, apply)
	m.record(op, target, err)
	return err
}

func (m *Swarm) record(op Op, target string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, Call{Op: op, Target: target, Write: op.IsWrite(), Err: err})
}

// do is one exchange with a manager, which the faults planned for op may hit.
func (m *Swarm) do(ctx context.Context, op Op, apply func() error) error {
	if err := m.roundTrip(ctx); err != nil {
		return err
	}
	if err := m.managerAnswers(); err != nil {
		return err
	}
	f, faulted := m.takeFault(op)
	if !faulted {
		return apply()
	}
	switch f.kind {
	case faultFail:
		return f.err
	case faultHang:
		<-ctx.Done()
		return fmt.Errorf("%w: memswarm: the manager did not answer: %w", swarm.ErrUnreachable, ctx.Err())
	case faultLoseAnswer:
		_ = apply()
		return fmt.Errorf("%w: memswarm: the call was applied but its answer was lost", swarm.ErrUnreachable)
	case faultDelay:
		err := apply()
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return err
	case faultRetryElsewhere:
		// Conn's fail-over: the first manager applied the call and did not answer; the
		// same call then goes to the next manager, against the new state.
		_ = apply()
		m.failOver()
		return apply()
	}
	return apply()
}

// roundTrip waits out the Latency of one exchange, or until ctx ends. It must be called
// without m.mu held.
func (m *Swarm) roundTrip(ctx context.Context) error {
	if m.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(m.Latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// managerAnswers says whether some manager can answer: one reachable and ready, and a
// majority of the managers for a leader. Without any node, an implicit manager answers.
func (m *Swarm) managerAnswers() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	managers, up := 0, 0
	for _, n := range m.nodes {
		if n.Spec.Role != swarmtypes.NodeRoleManager {
			continue
		}
		managers++
		if managerUp(n) {
			up++
		}
	}
	switch {
	case managers == 0:
		return nil
	case up == 0:
		return fmt.Errorf("%w (memswarm: no manager is reachable)", swarm.ErrUnreachable)
	case up <= managers/2:
		return fmt.Errorf("%w (memswarm: %d of %d managers reachable)", swarm.ErrQuorumLost, up, managers)
	}
	if n, ok := m.nodes[m.current]; !ok || !managerUp(n) {
		m.current = m.firstManagerUp("")
	}
	return nil
}

func managerUp(n *swarmtypes.Node) bool {
	return n.Spec.Role == swarmtypes.NodeRoleManager && n.Status.State == swarmtypes.NodeStateReady &&
		n.ManagerStatus != nil && n.ManagerStatus.Reachability != swarmtypes.ReachabilityUnreachable
}

// firstManagerUp is the first manager that answers after `after` in hostname order,
// wrapping around; "" when none does.
func (m *Swarm) firstManagerUp(after string) string {
	names := sortedKeys(m.nodes)
	for i := range names {
		if names[i] == after {
			names = append(names[i+1:], names[:i+1]...)
			break
		}
	}
	for _, h := range names {
		if managerUp(m.nodes[h]) {
			return h
		}
	}
	return ""
}

// failOver moves to the next manager, as Conn does when one does not answer.
func (m *Swarm) failOver() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if next := m.firstManagerUp(m.current); next != "" {
		m.current = next
	}
}

// Endpoint is the fake endpoint of the manager calls go to ("mem://<hostname>").
func (m *Swarm) Endpoint() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.endpointLocked()
}

func (m *Swarm) endpointLocked() string {
	if m.current == "" {
		return "mem://" + m.ID
	}
	return "mem://" + m.current
}
