package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
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

// Hub holds one Conn per SwarmCluster, shared by all controllers, one event stream per
// Conn fanned out to every subscriber, and one ServiceCache per Conn kept current from
// that stream.
type Hub struct {
	log logr.Logger
	// ServiceRelist is how often each cache lists every service again (default
	// DefaultServiceRelist). Set it before the first Connect.
	ServiceRelist time.Duration

	mu          sync.Mutex
	entries     map[ktypes.NamespacedName]*hubEntry
	subscribers []func(Event)
}

type hubEntry struct {
	fingerprint string
	conn        *Conn // nil for an attached Swarm
	view        *Cached
	stop        context.CancelFunc
}

// watched is what the hub follows: a Swarm with an event stream.
type watched interface {
	Swarm
	EventStream
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
		if e.fingerprint == fp && e.conn != nil {
			return e.conn, nil
		}
		e.stop()
		if e.conn != nil {
			e.conn.Close()
		}
		delete(h.entries, key)
	}
	conn, err := NewConn(t)
	if err != nil {
		return nil, err
	}
	e := h.start(key, conn)
	e.fingerprint, e.conn = fp, conn
	return conn, nil
}

// start makes the entry of a cluster and starts following its swarm. h.mu is held.
func (h *Hub) start(key ktypes.NamespacedName, sw watched) *hubEntry {
	ctx, cancel := context.WithCancel(context.Background())
	cache := NewServiceCache(sw, h.ServiceRelist)
	cache.changed = func(id, name string) {
		// A list found what no event said (a gap, or task counts): wake its stack.
		h.publish(Event{Cluster: key, Type: events.ServiceEventType, Action: events.ActionUpdate, ActorID: id, Attributes: map[string]string{"name": name}})
	}
	e := &hubEntry{view: &Cached{Swarm: sw, Cache: cache}, stop: cancel}
	h.entries[key] = e
	go cache.Run(ctx, func(m events.Message) { h.publish(eventOf(key, m)) })
	go h.watch(ctx, key, sw, cache)
	return e
}

// Attach follows a Swarm that is not reached through a Conn (the in-memory one, in
// tests) as Connect does a Conn: events to subscribers, and a service cache, whose
// cached view it returns.
func (h *Hub) Attach(key ktypes.NamespacedName, sw watched) *Cached {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.entries[key]; ok {
		e.stop()
		if e.conn != nil {
			e.conn.Close()
		}
	}
	return h.start(key, sw).view
}

// View is the cached view of conn, while conn is the cluster's pooled connection; conn
// itself otherwise.
func (h *Hub) View(key ktypes.NamespacedName, conn *Conn) Swarm {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.entries[key]; ok && e.conn == conn {
		return e.view
	}
	return conn
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
		if e.conn != nil {
			e.conn.Close()
		}
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
// fail-over, so that status follows the swarm without polling. Service events go to the
// cache first, which passes them on once it holds the change.
func (h *Hub) watch(ctx context.Context, key ktypes.NamespacedName, sw watched, cache *ServiceCache) {
	log := h.log.WithValues("cluster", key.String())
	types := []events.Type{events.ServiceEventType, events.NodeEventType, events.SecretEventType, events.ConfigEventType, events.NetworkEventType}
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := sw.Events(ctx, types, cache.Connected, func(m events.Message) {
			if !cache.Event(m) {
				h.publish(eventOf(key, m))
			}
		})
		cache.Disconnected()
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

func eventOf(key ktypes.NamespacedName, m events.Message) Event {
	return Event{Cluster: key, Type: m.Type, Action: m.Action, ActorID: m.Actor.ID, Attributes: m.Actor.Attributes}
}

// Events follows the swarm's events of the given types through a manager until the
// stream breaks. The stream starts at the manager's clock as read just before it (since),
// so what changes between that read and the subscription is replayed from the
// manager's event log: subscribed may be called before the request reaches it.
func (c *Conn) Events(ctx context.Context, types []events.Type, subscribed func(), deliver func(events.Message)) error {
	f := filters.NewArgs()
	for _, t := range types {
		f.Add("type", string(t))
	}
	// Info picks (and fails over to) a manager; the stream then goes to the same one.
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	opts := events.ListOptions{Filters: f}
	if t, err := time.Parse(time.RFC3339Nano, info.SystemTime); err == nil {
		opts.Since = fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
	}
	c.mu.Lock()
	idx := c.current
	cli := c.clients[idx]
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := cli.Events(ctx, opts)
	if subscribed != nil {
		subscribed()
	}
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
