package memswarm

import (
	"slices"
	"sync"
)

// Op names one method of swarm.Swarm, for the call log and fault injection.
type Op string

// One Op per method of swarm.Swarm.
const (
	OpHealth               Op = "Health"
	OpNodes                Op = "Nodes"
	OpSwapNodeAvailability Op = "SwapNodeAvailability"
	OpTasksOnNodes         Op = "TasksOnNodes"
	OpTasksOfServices      Op = "TasksOfServices"
	OpStackServices        Op = "StackServices"
	OpAllServices          Op = "AllServices"
	OpServiceByID          Op = "ServiceByID"
	OpCreateService        Op = "CreateService"
	OpUpdateService        Op = "UpdateService"
	OpRollbackService      Op = "RollbackService"
	OpRemoveService        Op = "RemoveService"
	OpStackNetworks        Op = "StackNetworks"
	OpNetworkExists        Op = "NetworkExists"
	OpCreateNetwork        Op = "CreateNetwork"
	OpRemoveNetwork        Op = "RemoveNetwork"
	OpSecrets              Op = "Secrets"
	OpCreateSecret         Op = "CreateSecret"
	OpRemoveSecret         Op = "RemoveSecret"
	OpConfigs              Op = "Configs"
	OpCreateConfig         Op = "CreateConfig"
	OpRemoveConfig         Op = "RemoveConfig"
	OpConfigData           Op = "ConfigData"
)

var writeOps = []Op{
	OpSwapNodeAvailability, OpCreateService, OpUpdateService, OpRollbackService, OpRemoveService,
	OpCreateNetwork, OpRemoveNetwork, OpCreateSecret, OpRemoveSecret, OpCreateConfig, OpRemoveConfig,
}

// IsWrite tells whether the operation may change the swarm.
func (op Op) IsWrite() bool { return slices.Contains(writeOps, op) }

// Call is one port call as the fake received it.
type Call struct {
	Op Op
	// Target is what the call was about: a service, node, network, secret or config
	// ID or name, a stack, or "" for calls about the whole swarm.
	Target string
	Write  bool
	// Err is what the call returned.
	Err error
}

// Calls returns every port call so far, oldest first.
func (m *Swarm) Calls() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

// Writes returns the calls that may have changed the swarm, failed ones included.
func (m *Swarm) Writes() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Call
	for _, c := range m.calls {
		if c.Write {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the call log (faults and their counting are kept).
func (m *Swarm) ResetCalls() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = nil
}

type faultKind int

const (
	faultFail faultKind = iota
	faultLoseAnswer
	faultHang
	faultRetryElsewhere
	faultDelay
)

// fault hits call number `at` of its operation (counted since the fake was made), or
// every call when always is set.
type fault struct {
	kind   faultKind
	at     int
	always bool
	err    error
	// release ends a delay.
	release chan struct{}
}

func (m *Swarm) plan(op Op, nth int, f fault) {
	if nth < 1 {
		panic("memswarm: nth counts from 1 (the next call)")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f.at = m.counts[op] + nth
	m.faults[op] = append(m.faults[op], f)
}

// Fail makes the nth call of op from now on (1: the next one) return err without
// applying anything.
func (m *Swarm) Fail(op Op, nth int, err error) { m.plan(op, nth, fault{kind: faultFail, err: err}) }

// FailAlways makes every call of op return err without applying anything, until Heal.
func (m *Swarm) FailAlways(op Op, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults[op] = append(m.faults[op], fault{kind: faultFail, always: true, err: err})
}

// LoseAnswer makes the nth call of op from now on apply, then lose its answer: the
// caller gets an error wrapping swarm.ErrUnreachable.
func (m *Swarm) LoseAnswer(op Op, nth int) { m.plan(op, nth, fault{kind: faultLoseAnswer}) }

// Hang makes the nth call of op from now on block until its context is done, then
// return an error wrapping swarm.ErrUnreachable and ctx.Err(). Nothing is applied.
func (m *Swarm) Hang(op Op, nth int) { m.plan(op, nth, fault{kind: faultHang}) }

// RetryElsewhere makes the nth call of op from now on apply on one manager, lose its
// answer, and run again on the next manager with the same arguments, as Conn's
// fail-over does: the caller gets what the second run says (a version conflict for
// UpdateService, a name conflict for a create, nil for a rollback Conn recognises as
// its own, ...).
func (m *Swarm) RetryElsewhere(op Op, nth int) {
	m.plan(op, nth, fault{kind: faultRetryElsewhere})
}

// Delay makes the nth call of op from now on apply at once and answer only when the
// returned release is called (or its context ends): a read that reflects the swarm as
// it was when it arrived, answered after later changes.
func (m *Swarm) Delay(op Op, nth int) (release func()) {
	ch := make(chan struct{})
	m.plan(op, nth, fault{kind: faultDelay, release: ch})
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Heal removes every planned fault.
func (m *Swarm) Heal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = map[Op][]fault{}
}

// takeFault counts a call of op and returns the fault planned for it, if any.
func (m *Swarm) takeFault(op Op) (fault, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[op]++
	n := m.counts[op]
	for i, f := range m.faults[op] {
		if f.always {
			return f, true
		}
		if f.at == n {
			m.faults[op] = slices.Delete(m.faults[op], i, i+1)
			return f, true
		}
	}
	return fault{}, false
}
