package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr"
	ktypes "k8s.io/apimachinery/pkg/types"
)

// Event is a change the swarm announced, tagged with the SwarmCluster it came from.
// Disconnected is set when the event stream of the cluster broke: the endpoint in use
// probably went away, and the cluster's health should be read again.
type Event struct {
	Cluster      ktypes.NamespacedName
	Type         events.Type
	Action       events.Action
	ActorID      string
	Attributes   map[string]string
	Disconnected bool
}

// Hub holds one Conn per SwarmCluster, shared by all controllers, and one event stream
// per Conn fanned out to every subscriber.
type Hub struct {
	log logr.Logger

	mu          sync.Mutex
	entries     map[ktypes.NamespacedName]*hubEntry
	subscribers []func(Event)
}

type hubEntry struct {
	fingerprint string
	conn        *Conn
	stop        context.CancelFunc
}

// NewHub returns an empty hub.
func NewHub(log logr.Logger) *Hub {
	return &Hub{log: log, entries: map[ktypes.NamespacedName]*hubEntry{}}
}

// Subscribe registers fn to receive every event of every cluster. fn must not block.
func (h *Hub) Subscribe(fn func(Event)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subscribers = append(h.subscribers, fn)
}

// Fingerprint identifies a target's settings; a changed endpoint list, TLS material or
// insecure flag yields a new connection.
func Fingerprint(t Target) string {
	h := sha256.New()
	h.Write([]byte(strings.Join(t.Endpoints, "\n")))
	for _, b := range [][]byte{t.CA, t.Cert, t.Key} {
		h.Write([]byte{0})
		h.Write(b)
	}
	if t.Insecure {
		h.Write([]byte("insecure"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Connect returns the cluster's connection, building it (and its event stream) only when
// the cluster is new or its target changed.
func (h *Hub) Connect(key ktypes.NamespacedName, t Target) (*Conn, error) {
	fp := Fingerprint(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.entries[key]; ok {
		if e.fingerprint == fp {
			return e.conn, nil
		}
		e.stop()
		e.conn.Close()
		delete(h.entries, key)
	}
	conn, err := NewConn(t)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.entries[key] = &hubEntry{fingerprint: fp, conn: conn, stop: cancel}
	go h.watch(ctx, key, conn)
	return conn, nil
}

// Holds says whether conn is still the cluster's pooled connection (not forgotten, not
// replaced by one to other endpoints or with other keys).
func (h *Hub) Holds(key ktypes.NamespacedName, conn *Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.entries[key]
	return ok && e.conn == conn
}

// Forget closes the cluster's connection, for a deleted SwarmCluster.
func (h *Hub) Forget(key ktypes.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.entries[key]; ok {
		e.stop()
		e.conn.Close()
		delete(h.entries, key)
	}
}

// Close stops every connection.
func (h *Hub) Close() {
	h.mu.Lock()
	keys := make([]ktypes.NamespacedName, 0, len(h.entries))
	for k := range h.entries {
		keys = append(keys, k)
	}
	h.mu.Unlock()
	for _, k := range keys {
		h.Forget(k)
	}
}

func (h *Hub) publish(ev Event) {
	h.mu.Lock()
	subs := append([]func(Event){}, h.subscribers...)
	h.mu.Unlock()
	for _, fn := range subs {
		fn(ev)
	}
}

// watch follows the swarm's events through whichever manager answers, reconnecting after
// fail-over, so that status follows the swarm without polling.
func (h *Hub) watch(ctx context.Context, key ktypes.NamespacedName, conn *Conn) {
	log := h.log.WithValues("cluster", key.String())
	f := filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.NodeEventType)),
		filters.Arg("type", string(events.SecretEventType)),
		filters.Arg("type", string(events.ConfigEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
	)
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := conn.stream(ctx, f, func(m events.Message) {
			h.publish(Event{Cluster: key, Type: m.Type, Action: m.Action, ActorID: m.Actor.ID, Attributes: m.Actor.Attributes})
		})
		if ctx.Err() != nil {
			return
		}
		log.V(1).Info("Event stream ended, reconnecting", "error", err)
		h.publish(Event{Cluster: key, Disconnected: true})
		if time.Since(start) > 10*time.Second {
			backoff = 500 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 10*time.Second {
			backoff *= 2
		}
	}
}

// stream subscribes to events on the first endpoint that is a reachable manager and
// delivers them until the stream breaks.
func (c *Conn) stream(ctx context.Context, f filters.Args, deliver func(events.Message)) error {
	var cli *client.Client
	// Info picks (and fails over to) a manager; the stream then goes to the same one.
	if _, err := c.Info(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	idx := c.current
	cli = c.clients[idx]
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: f})
	// A hung daemon keeps its connection open and sends nothing: when the calls have
	// failed over to another manager, follow them.
	check := time.NewTicker(streamCheck)
	defer check.Stop()
	for {
		select {
		case m := <-msgs:
			deliver(m)
		case err := <-errs:
			return err
		case <-check.C:
			c.mu.Lock()
			moved := c.current != idx
			c.mu.Unlock()
			if moved {
				return errors.New("the calls moved to another endpoint")
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// streamCheck is how often an event stream checks that its endpoint is still in use.
const streamCheck = 2 * time.Second
