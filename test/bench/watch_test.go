package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// observation is one state of a SwarmStack and when this process saw it: the watch
// delivers every write within milliseconds, so "when the status showed X" is measured
// without polling.
type observation struct {
	at    time.Time
	stack *swarmv1.SwarmStack
}

// stackWatch records every version of one SwarmStack.
type stackWatch struct {
	cancel context.CancelFunc

	mu     sync.Mutex
	obs    []observation
	notify chan struct{} // closed and replaced on each new observation
}

func watchStack(ns, name string) (*stackWatch, error) {
	wc, err := client.NewWithWatch(bed.Config, client.Options{Scheme: testbed.Scheme})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &stackWatch{cancel: cancel, notify: make(chan struct{})}
	go w.loop(ctx, wc, ns, name)
	return w, nil
}

func (w *stackWatch) stop() { w.cancel() }

func (w *stackWatch) loop(ctx context.Context, wc client.WithWatch, ns, name string) {
	rv := ""
	for ctx.Err() == nil {
		wi, err := wc.Watch(ctx, &swarmv1.SwarmStackList{}, &client.ListOptions{
			Namespace:     ns,
			FieldSelector: fields.OneTermEqualSelector("metadata.name", name),
			Raw:           &metav1.ListOptions{ResourceVersion: rv},
		})
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		for ev := range wi.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified:
				s, ok := ev.Object.(*swarmv1.SwarmStack)
				if !ok {
					continue
				}
				rv = s.ResourceVersion
				w.add(observation{at: time.Now(), stack: s})
			case watch.Error:
				rv = "" // expired: start again from the current state
			}
		}
		wi.Stop()
	}
}

func (w *stackWatch) add(o observation) {
	w.mu.Lock()
	w.obs = append(w.obs, o)
	close(w.notify)
	w.notify = make(chan struct{})
	w.mu.Unlock()
}

// mark is the index of the next observation: wait from here for what a write causes.
func (w *stackWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.obs)
}

// since returns the observations from index i on.
func (w *stackWatch) since(i int) []observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]observation(nil), w.obs[i:]...)
}

// waitFor returns the first observation from index `from` for which cond is true. cond
// returns an error to stop waiting (a rollout that failed, say).
func (w *stackWatch) waitFor(from int, timeout time.Duration, cond func(*swarmv1.SwarmStack) (bool, error)) (observation, error) {
	timer := time.NewTimer(budget(timeout))
	defer timer.Stop()
	var last *swarmv1.SwarmStack
	for i := from; ; {
		w.mu.Lock()
		pending, notify := w.obs[i:], w.notify
		w.mu.Unlock()
		for _, o := range pending {
			i++
			last = o.stack
			ok, err := cond(o.stack)
			if err != nil {
				return o, err
			}
			if ok {
				return o, nil
			}
		}
		select {
		case <-notify:
		case <-timer.C:
			return observation{}, fmt.Errorf("not seen after %s; last status: %s", timeout, describe(last))
		}
	}
}

func describe(s *swarmv1.SwarmStack) string {
	if s == nil {
		return "none"
	}
	out := fmt.Sprintf("generation %d observed %d", s.Generation, s.Status.ObservedGeneration)
	for _, c := range s.Status.Conditions {
		out += fmt.Sprintf("; %s=%s/%s: %s", c.Type, c.Status, c.Reason, c.Message)
	}
	if len(s.Status.History) > 0 {
		h := s.Status.History[0]
		out += fmt.Sprintf("; history[0] %s %s %q", h.Version, h.Outcome, h.Message)
	}
	return out
}
