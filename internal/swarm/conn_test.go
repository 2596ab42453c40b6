package swarm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/docker/docker/errdefs"
)

func TestClassifyTellsWhyToTryAnotherEndpoint(t *testing.T) {
	cases := map[string]struct {
		err  error
		want error // nil: the request's own failure, no fail-over
	}{
		"a worker answers":                 {errdefs.Unavailable(errors.New("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.")), ErrNotAManager},
		"a node outside any swarm answers": {errdefs.Unavailable(errors.New(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`)), ErrNotInSwarm},
		"the swarm has no leader":          {errdefs.Unavailable(errors.New("rpc error: code = Unknown desc = The swarm does not have a leader.")), ErrQuorumLost},
		"nobody listens":                   {fmt.Errorf("dial tcp 192.168.213.11:2376: connect: connection refused"), ErrUnreachable},
		"a certificate from another CA":    {errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), ErrTLS},
		"a conflict is the request's own":  {errdefs.Conflict(errors.New("update out of sequence")), nil},
		"a bad spec is the request's own":  {errdefs.InvalidParameter(errors.New("invalid mount config")), nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := classify(tc.err)
			if tc.want == nil {
				if got != nil {
					t.Fatalf("classified as %v; the endpoint answered", got)
				}
				return
			}
			if !errors.Is(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestJoinEndpointErrorsKeepsTheMostTellingCause(t *testing.T) {
	errs := []error{
		fmt.Errorf("tcp://a: %w", ErrUnreachable),
		fmt.Errorf("tcp://b: %w", ErrQuorumLost),
	}
	got := joinEndpointErrors(errs)
	if !errors.Is(got, ErrQuorumLost) || errors.Is(got, ErrUnreachable) {
		t.Fatalf("got %v: want quorum lost only", got)
	}
	if got := joinEndpointErrors(errs[:1]); !errors.Is(got, ErrUnreachable) {
		t.Fatalf("got %v", got)
	}
}

func TestNewConnRefusesUnsafeOrMalformedTargets(t *testing.T) {
	cases := map[string]Target{
		"plain tcp without insecure": {Endpoints: []string{"tcp://10.0.0.1:2376"}},
		"no port":                    {Endpoints: []string{"tcp://10.0.0.1"}, Insecure: true},
		"unknown scheme":             {Endpoints: []string{"http://10.0.0.1:2376"}, Insecure: true},
		"no endpoints":               {},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := NewConn(tc); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := NewConn(Target{Endpoints: []string{"tcp://10.0.0.1:2376"}, CA: []byte("junk"), Cert: []byte("x"), Key: []byte("y")}); !errors.Is(err, ErrTLS) {
		t.Fatalf("broken TLS material: got %v, want ErrTLS", err)
	}
	if c, err := NewConn(Target{Endpoints: []string{"unix:///run/docker.sock", "tcp://10.0.0.1:2376"}, Insecure: true}); err != nil {
		t.Fatalf("valid target refused: %v", err)
	} else {
		c.Close()
	}
}

func TestRequestKindIsThePathsFirstSegmentAfterTheVersion(t *testing.T) {
	for path, want := range map[string]string{
		"/v1.41/services":            "services",
		"/v1.41/services/abc/update": "services",
		"/services/create":           "services",
		"/v1.47/networks/x":          "networks",
		"/_ping":                     "_ping",
		"/v1.41/tasks":               "tasks",
		"":                           "",
	} {
		if got := requestKind(path); got != want {
			t.Errorf("requestKind(%q) = %q, want %q", path, got, want)
		}
	}
}
