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
