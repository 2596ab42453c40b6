package swarm

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// hungManager accepts connections and never answers, like a daemon that is stopped
// (SIGSTOP) or a manager behind a black hole that still completes the handshake.
func hungManager(t *testing.T) (endpoint string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = &atomic.Int32{}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range held {
			_ = c.Close()
		}
	})
	return "tcp://" + l.Addr().String(), accepted
}

func TestHungSwarmIsParkedSoItsOtherCallsCostNothing(t *testing.T) {
	endpoint, accepted := hungManager(t)
	c, err := NewConn(Target{Endpoints: []string{endpoint}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.callTimeout = 200 * time.Millisecond
	ctx := context.Background()
	if _, err := c.StackServices(ctx, "numbers"); !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrParked) {
		t.Fatalf("first call: %v, want unreachable", err)
	}
	before := accepted.Load()
	for range 5 {
		_, err := c.StackServices(ctx, "numbers")
		if !errors.Is(err, ErrParked) || !errors.Is(err, ErrUnreachable) {
			t.Fatalf("call while parked: %v, want ErrParked (and still ErrUnreachable)", err)
		}
	}
	if got := accepted.Load(); got != before {
		t.Fatalf("calls while parked reached the swarm: %d new connections", got-before)
	}
	// The SwarmCluster's probe goes through, to see the swarm come back.
	if _, err := c.Health(ctx); errors.Is(err, ErrParked) {
		t.Fatalf("Health was parked: %v", err)
	}
	// Past the parking time, calls go out again.
	c.now = func() time.Time { return time.Now().Add(parkFor + time.Second) }
	if _, err := c.StackServices(ctx, "numbers"); errors.Is(err, ErrParked) {
		t.Fatalf("still parked after parkFor: %v", err)
	}
}

func TestSwarmThatAnswersAgainIsNoLongerParked(t *testing.T) {
	endpoint, _ := hungManager(t)
	c, err := NewConn(Target{Endpoints: []string{endpoint}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.callTimeout = 200 * time.Millisecond
	ctx := context.Background()
	_, _ = c.StackServices(ctx, "numbers") // parks it
	// The probe gets an answer: the swarm is back, and calls go out again at once,
	// before parkFor has passed.
	answered := errors.New("an answer from the swarm")
	if err := c.call(probe(ctx), readTimeout, func(context.Context, *client.Client) error { return answered }); !errors.Is(err, answered) {
		t.Fatalf("probe: %v", err)
	}
	if _, err := c.StackServices(ctx, "numbers"); errors.Is(err, ErrParked) {
		t.Fatalf("still parked after the swarm answered: %v", err)
	}
}

// TestFlappingSwarmHoldsOneCallAtATimePastItsParking: once the parking time is over, one
// call finds out whether the swarm answers again; the others fail at once meanwhile, so a
// swarm that keeps going hung costs one worker a timeout per parking, not all of them.
func TestFlappingSwarmHoldsOneCallAtATimePastItsParking(t *testing.T) {
	endpoint, accepted := hungManager(t)
	c, err := NewConn(Target{Endpoints: []string{endpoint}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.callTimeout = time.Second
	ctx := context.Background()
	_, _ = c.StackServices(ctx, "numbers") // parks it
	c.mu.Lock()
	c.now = func() time.Time { return time.Now().Add(parkFor + time.Second) }
	c.mu.Unlock()
	before := accepted.Load()
	trial := make(chan error, 1)
	go func() { _, err := c.StackServices(ctx, "numbers"); trial <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the call past the parking time never reached the swarm")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 4 {
		if _, err := c.StackServices(ctx, "numbers"); !errors.Is(err, ErrParked) {
			t.Fatalf("a call while another one tries the swarm: %v, want ErrParked", err)
		}
	}
	if got := accepted.Load() - before; got != 1 {
		t.Fatalf("%d calls reached the hung swarm past its parking, want 1", got)
	}
	if err := <-trial; !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrParked) {
		t.Fatalf("the trial call: %v, want unreachable", err)
	}
	// The failed trial parked it again.
	if _, err := c.StackServices(ctx, "numbers"); !errors.Is(err, ErrParked) {
		t.Fatalf("after a failed trial: %v, want ErrParked", err)
	}
}
