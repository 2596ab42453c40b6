package memswarm

import (
	"context"
	"fmt"
	"slices"

	"github.com/docker/docker/api/types/events"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/swarmops/swarm-operator/internal/swarm"
)

// The event stream, as Swarm sends service events (contract_test checks which change
// sends which): a service's create, each write to it (the operator's, another
// client's, and its updater's own moves of the update status), and its removal. Task
// changes alone (a task that fails, a scale-up's new tasks running) send none.

type subscriber struct {
	types  []events.Type
	queue  []events.Message
	wake   chan struct{}
	ended  chan struct{}
	closed bool
}

// eventFaults are what a test did to the event streams.
type eventFaults struct {
	// silent: the streams stay open and send nothing; what happens meanwhile is lost.
	silent bool
	// held: events are kept back until ReleaseEvents.
	held    bool
	heldMsg []events.Message
}

// emit sends a service event to every stream. m.mu is held.
func (m *Swarm) emit(action events.Action, s *service) {
	msg := events.Message{
		Type: events.ServiceEventType, Action: action, Scope: "swarm",
		Actor:    events.Actor{ID: s.ID, Attributes: map[string]string{"name": s.Spec.Name}},
		TimeNano: m.now().UnixNano(),
	}
	switch {
	case m.events.silent:
	case m.events.held:
		m.events.heldMsg = append(m.events.heldMsg, msg)
	default:
		m.send(msg)
	}
}

func (m *Swarm) send(msgs ...events.Message) {
	for _, sub := range m.subs {
		for _, msg := range msgs {
			if slices.Contains(sub.types, msg.Type) {
				sub.queue = append(sub.queue, msg)
			}
		}
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// Events streams the swarm's events, as Conn.Events does, until ctx ends or the test
// ends the streams (EndEventStreams). Only service events are modelled.
func (m *Swarm) Events(ctx context.Context, types []events.Type, subscribed func(), deliver func(events.Message)) error {
	if err := m.roundTrip(ctx); err != nil {
		return err
	}
	if err := m.managerAnswers(); err != nil {
		return err
	}
	sub := &subscriber{types: types, wake: make(chan struct{}, 1), ended: make(chan struct{})}
	m.mu.Lock()
	m.subs = append(m.subs, sub)
	m.mu.Unlock()
	defer m.unsubscribe(sub)
	if subscribed != nil {
		subscribed()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.ended:
			return fmt.Errorf("%w: memswarm: the event stream was cut", swarm.ErrUnreachable)
		case <-sub.wake:
		}
		m.mu.Lock()
		msgs := sub.queue
		sub.queue = nil
		m.mu.Unlock()
		for _, msg := range msgs {
			deliver(msg)
		}
	}
}

func (m *Swarm) unsubscribe(sub *subscriber) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs = slices.DeleteFunc(m.subs, func(s *subscriber) bool { return s == sub })
}

// EndEventStreams cuts every open event stream, as a manager that goes away does: the
// subscriber sees the stream end (and reconnects).
func (m *Swarm) EndEventStreams() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sub := range m.subs {
		if !sub.closed {
			sub.closed = true
			close(sub.ended)
		}
	}
}

// EventStreams is the number of open event streams.
func (m *Swarm) EventStreams() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs)
}

// SilenceEvents makes the open streams, and those opened later, send nothing without
// ending, as a manager whose stream hangs: the events of the changes made meanwhile are
// lost. ResumeEvents undoes it (for later changes only).
func (m *Swarm) SilenceEvents() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events.silent = true
}

// ResumeEvents makes the streams send events again.
func (m *Swarm) ResumeEvents() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events.silent = false
}

// HoldEvents keeps the events back until ReleaseEvents.
func (m *Swarm) HoldEvents() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events.held = true
}

// ReleaseEvents sends the events held back, in the order reorder gives them (it may
// repeat, drop or reverse them; nil keeps them as they were), and stops holding.
func (m *Swarm) ReleaseEvents(reorder func([]events.Message) []events.Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msgs := m.events.heldMsg
	m.events.held, m.events.heldMsg = false, nil
	if reorder != nil {
		msgs = reorder(msgs)
	}
	m.send(msgs...)
}

// ServiceByID reads one service by ID with its task counts; NotFound once it is gone.
func (m *Swarm) ServiceByID(ctx context.Context, id string) (swarmtypes.Service, error) {
	var out swarmtypes.Service
	err := m.run(ctx, OpServiceByID, id, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, s := range m.services {
			if s.ID == id {
				out = m.serviceView(s)
				return nil
			}
		}
		return errdefs.NotFound(fmt.Errorf("service %s not found", id))
	})
	return out, err
}
