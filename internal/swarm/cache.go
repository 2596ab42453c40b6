package swarm

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/swarm"
)

// DefaultServiceRelist is how often a ServiceCache lists every service again. Events say
// nothing of task counts (Swarm has no task events), so this bounds how old the cached
// counts can be, and how long a stream that stopped sending without breaking can hide a
// change.
const DefaultServiceRelist = time.Minute

// StackLabel is the label docker stack deploy puts on a stack's objects.
const StackLabel = "com.docker.stack.namespace"

// StackOfService is the stack a service belongs to: the one its stack label names, when
// its name is that stack's name and "_", as docker stack deploy and the operator name a
// stack's services; "" otherwise. The name matters for speed: Swarm answers a label
// filter by going through every service it has, a name prefix from its name index, so
// StackServices asks for both and everything that lists a stack's services agrees on it.
func StackOfService(spec swarm.ServiceSpec) string {
	stack := spec.Labels[StackLabel]
	if stack == "" || !strings.HasPrefix(spec.Name, stack+"_") {
		return ""
	}
	return stack
}

// ServiceCache holds every service of one Swarm, as a list with task counts shows them:
// listed in full whenever its event stream (re)connects and every relist period, and
// kept current in between from service events (a changed service is read again by ID, a
// removed one dropped). It serves a stack's services only while it is synced: listed
// since the stream last connected, with no gap since, and no write of the operator's to
// the stack's services that it has not seen yet.
//
// Reads and events race; versions settle them. An entry is never replaced by an older
// Swarm version, nor by the same version from a read that began earlier, and a removed
// service does not come back from a read that began before its removal. Every read is
// numbered when it begins (seq) for this.
type ServiceCache struct {
	src    Swarm
	relist time.Duration
	// changed, when set, hears of each service a list or a read found changed, after
	// the cache holds the change (a wake-up for what the events did not say).
	changed func(id, name string)

	mu     sync.Mutex
	seq    uint64
	synced bool
	// connected: the event stream is up. syncAfter is the seq when it last connected
	// (or the cache last missed a change): only a list that began after it syncs.
	connected bool
	syncAfter uint64
	listedAt  uint64 // seq of the last list applied
	listed    bool   // a list was applied once: later lists report changes
	byID      map[string]*cachedService
	byStack   map[string]map[string]bool
	// gone are services removed since the last list (ID → seq of the removal).
	gone map[string]uint64
	// pending are writes of the operator's that the cache has not seen yet, by service
	// ID (or "name:" and the name, for a create whose answer was lost).
	pending map[string]pendingWrite
	// dirty are the services an event named, to read again, with the event to pass on.
	dirty   map[string]events.Message
	kick    chan struct{}
	relistC chan struct{}
}

type cachedService struct {
	// raw is the service as JSON: each reader decodes its own copy, so no caller can
	// change what the cache holds.
	raw         []byte
	name, stack string
	version     uint64
	seq         uint64
	counts      swarm.ServiceStatus
}

type pendingWrite struct {
	stack string
	seq   uint64 // after the write returned
	at    uint64 // the version the write was made at; 0 for a create
}

// NewServiceCache returns an empty, unsynced cache of src's services. relist 0 means
// DefaultServiceRelist.
func NewServiceCache(src Swarm, relist time.Duration) *ServiceCache {
	if relist <= 0 {
		relist = DefaultServiceRelist
	}
	return &ServiceCache{
		src: src, relist: relist,
		byID: map[string]*cachedService{}, byStack: map[string]map[string]bool{},
		gone: map[string]uint64{}, pending: map[string]pendingWrite{}, dirty: map[string]events.Message{},
		kick: make(chan struct{}, 1), relistC: make(chan struct{}, 1),
	}
}

// Synced tells whether the cache serves reads.
func (c *ServiceCache) Synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.synced
}

// StackServices returns the stack's services sorted by name, with their task counts,
// and true; or false when the cache cannot answer for the stack (not synced, or a
// write to it not seen yet): the caller then reads the Swarm.
func (c *ServiceCache) StackServices(stack string) ([]swarm.Service, bool) {
	c.mu.Lock()
	if !c.synced {
		c.mu.Unlock()
		return nil, false
	}
	for _, p := range c.pending {
		if p.stack == stack {
			c.mu.Unlock()
			return nil, false
		}
	}
	raws := make([][]byte, 0, len(c.byStack[stack]))
	for id := range c.byStack[stack] {
		raws = append(raws, c.byID[id].raw)
	}
	c.mu.Unlock()
	out := make([]swarm.Service, 0, len(raws))
	for _, raw := range raws {
		var svc swarm.Service
		if err := json.Unmarshal(raw, &svc); err != nil {
			return nil, false
		}
		out = append(out, svc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out, true
}

// begin numbers a read (or a write's end) in the order they happen.
func (c *ServiceCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	return c.seq
}

// put stores svc as read by the read numbered at, unless the cache holds a newer state.
// It reports whether the entry changed.
func (c *ServiceCache) put(svc swarm.Service, at uint64) bool {
	if _, removed := c.gone[svc.ID]; removed {
		return false // IDs are not reused: a read that still saw it began before the removal
	}
	old := c.byID[svc.ID]
	if old == nil && at < c.listedAt {
		// The newer list did not have it: it was removed since this read began.
		return false
	}
	if old != nil && (svc.Version.Index < old.version || svc.Version.Index == old.version && at <= old.seq) {
		return false
	}
	raw, err := json.Marshal(svc)
	if err != nil {
		return false
	}
	e := &cachedService{raw: raw, name: svc.Spec.Name, stack: StackOfService(svc.Spec), version: svc.Version.Index, seq: at}
	if svc.ServiceStatus != nil {
		e.counts = *svc.ServiceStatus
	}
	if old != nil && old.stack != e.stack {
		c.unindex(svc.ID, old.stack)
	}
	c.byID[svc.ID] = e
	if c.byStack[e.stack] == nil {
		c.byStack[e.stack] = map[string]bool{}
	}
	c.byStack[e.stack][svc.ID] = true
	if p, ok := c.pending[svc.ID]; ok && (at > p.seq || svc.Version.Index > p.at) {
		delete(c.pending, svc.ID)
	}
	return old == nil || old.version != e.version || !reflect.DeepEqual(old.counts, e.counts)
}

func (c *ServiceCache) unindex(id, stack string) {
	delete(c.byStack[stack], id)
	if len(c.byStack[stack]) == 0 {
		delete(c.byStack, stack)
	}
}

// drop forgets a removed service, for good.
func (c *ServiceCache) drop(id string, at uint64) {
	if e := c.byID[id]; e != nil {
		c.unindex(id, e.stack)
		delete(c.byID, id)
	}
	c.gone[id] = at
	delete(c.pending, id)
}

// applyList replaces the cache with a full list made by the read numbered at, keeping
// what changed since that read began. It returns the services found changed.
func (c *ServiceCache) applyList(svcs []swarm.Service, at uint64) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	report := c.listed
	changed := map[string]string{}
	seen := make(map[string]bool, len(svcs))
	for _, svc := range svcs {
		seen[svc.ID] = true
		if c.put(svc, at) && report {
			changed[svc.ID] = svc.Spec.Name
		}
	}
	for id, e := range c.byID {
		if !seen[id] && e.seq < at {
			c.drop(id, at)
			if report {
				changed[id] = e.name
			}
		}
	}
	// The list began after these: it shows what they did, or that they did nothing.
	for k, p := range c.pending {
		if p.seq < at {
			delete(c.pending, k)
		}
	}
	for id, removedAt := range c.gone {
		if removedAt < at {
			delete(c.gone, id)
		}
	}
	if at > c.listedAt {
		c.listedAt = at
	}
	c.listed = true
	if c.connected && at > c.syncAfter {
		c.synced = true
	}
	return changed
}

// Connected is called when the event stream is set up: a list follows, and the cache
// serves again once it is in.
func (c *ServiceCache) Connected() {
	c.mu.Lock()
	c.seq++
	c.connected, c.syncAfter = true, c.seq
	c.mu.Unlock()
	c.Relist()
}

// Disconnected is called when the event stream ended: what happens until it is back is
// not heard, so reads go to the Swarm until a list after the reconnection.
func (c *ServiceCache) Disconnected() {
	c.mu.Lock()
	c.connected, c.synced = false, false
	c.mu.Unlock()
}

// Relist asks for a full list soon.
func (c *ServiceCache) Relist() {
	select {
	case c.relistC <- struct{}{}:
	default:
	}
}

// Event takes one event of the stream. A service's create or update is read again by
// ID (Run does, then passes the event on); a removal drops it at once.
func (c *ServiceCache) Event(m events.Message) bool {
	if m.Type != events.ServiceEventType || m.Actor.ID == "" {
		return false
	}
	c.mu.Lock()
	if m.Action == events.ActionRemove {
		c.seq++
		c.drop(m.Actor.ID, c.seq)
		delete(c.dirty, m.Actor.ID)
		c.mu.Unlock()
		return false
	}
	c.dirty[m.Actor.ID] = m
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return true
}

// Run keeps the cache current until ctx ends: the reads that events ask for, the lists
// that connections ask for, and the periodic list. publish receives each service event
// once the cache holds its change.
func (c *ServiceCache) Run(ctx context.Context, publish func(events.Message)) {
	tick := time.NewTicker(c.relist)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.Relist()
		case <-retry.C:
			c.Relist()
		case <-c.kick:
			c.readDirty(ctx, publish)
		case <-c.relistC:
			if err := c.list(ctx); err != nil && ctx.Err() == nil {
				retry.Reset(min(c.relist, 2*time.Second))
			}
		}
	}
}

func (c *ServiceCache) list(ctx context.Context) error {
	at := c.begin()
	svcs, err := c.src.AllServices(ctx)
	if err != nil {
		return err
	}
	changed := c.applyList(svcs, at)
	if c.changed != nil {
		for id, name := range changed {
			c.changed(id, name)
		}
	}
	return nil
}

// readDirty reads again each service an event named.
func (c *ServiceCache) readDirty(ctx context.Context, publish func(events.Message)) {
	c.mu.Lock()
	dirty := c.dirty
	c.dirty = map[string]events.Message{}
	c.mu.Unlock()
	for id, m := range dirty {
		at := c.begin()
		svc, err := c.src.ServiceByID(ctx, id)
		c.mu.Lock()
		switch {
		case err == nil:
			c.put(svc, at)
		case cerrdefs.IsNotFound(err):
			c.drop(id, at)
		default:
			// The change is unknown: serve nothing until a list has it.
			c.seq++
			c.synced, c.syncAfter = false, c.seq
		}
		c.mu.Unlock()
		if err != nil && !cerrdefs.IsNotFound(err) && ctx.Err() == nil {
			c.Relist()
		}
		if publish != nil {
			publish(m)
		}
	}
}

// wrote records a write of the operator's to a service: until the cache has read that
// service after the write (or at a newer version than the write's), the stack's reads
// go to the Swarm. key is the service ID, or "name:<name>" for a create without one.
func (c *ServiceCache) wrote(key, stack string, at uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.pending[key] = pendingWrite{stack: stack, seq: c.seq, at: at}
}

// removed records a removal of the operator's.
func (c *ServiceCache) removed(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.drop(id, c.seq)
}

// stackOf is the stack of a cached service, if the cache knows it.
func (c *ServiceCache) stackOf(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byID[id]; e != nil {
		return e.stack, true
	}
	return "", false
}

// unsync makes the cache serve nothing until the next list.
func (c *ServiceCache) unsync() {
	c.mu.Lock()
	c.seq++
	c.synced, c.syncAfter = false, c.seq
	c.mu.Unlock()
	c.Relist()
}
