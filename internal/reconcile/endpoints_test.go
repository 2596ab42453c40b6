package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"

	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

func TestEndpointPolicySaysWhichRuleRefuses(t *testing.T) {
	list := []string{"10.0.0.0/8", "192.168.1.7", "swarm.example.com", "*.lab.example.com", "2001:db8::/32"}
	cases := map[string]struct {
		policy EndpointPolicy
		spec   swarmv1.SwarmClusterSpec
		want   string // "" when allowed
	}{
		"default allows tcp with TLS": {spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://anywhere:2376"}}},
		"default refuses insecure": {spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://10.0.0.1:2375"}, Insecure: true},
			want: "insecure: true is refused: the operator connects with mutual TLS only, unless started with --allow-insecure-swarm-endpoints"},
		"flag allows insecure": {policy: EndpointPolicy{AllowInsecure: true}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://10.0.0.1:2375"}, Insecure: true}},
		"default refuses unix": {spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://a:2376", "unix:///var/run/docker.sock"}},
			want: `endpoint "unix:///var/run/docker.sock" is refused: a unix socket is on the operator's own node; allowed only when the operator is started with --allow-unix-swarm-endpoints`},
		"flag allows unix":         {policy: EndpointPolicy{AllowUnix: true}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"unix:///run/docker.sock"}}},
		"CIDR":                     {policy: EndpointPolicy{Allowed: list}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://10.20.30.40:2376"}}},
		"IPv6 CIDR":                {policy: EndpointPolicy{Allowed: list}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://[2001:db8::1]:2376"}}},
		"IP address":               {policy: EndpointPolicy{Allowed: list}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://192.168.1.7:2376"}}},
		"host name in any case":    {policy: EndpointPolicy{Allowed: list}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://Swarm.Example.com.:2376"}}},
		"name suffix":              {policy: EndpointPolicy{Allowed: list}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://m1.lab.example.com:2376"}}},
		"suffix is not the apex":   {policy: EndpointPolicy{Allowed: list}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://lab.example.com:2376"}}, want: `endpoint "tcp://lab.example.com:2376" is outside`},
		"name that merely ends so": {policy: EndpointPolicy{Allowed: list}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://evilswarm.example.com:2376"}}, want: `endpoint "tcp://evilswarm.example.com:2376" is outside`},
		"IP outside": {policy: EndpointPolicy{Allowed: list}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://10.0.0.1:2376", "tcp://172.16.0.1:2376"}},
			want: `endpoint "tcp://172.16.0.1:2376" is outside the operator's --swarm-endpoints-allowed (10.0.0.0/8,192.168.1.7,swarm.example.com,*.lab.example.com,2001:db8::/32)`},
		"a name is not resolved into a CIDR":   {policy: EndpointPolicy{Allowed: []string{"127.0.0.0/8"}}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://localhost:2376"}}, want: `endpoint "tcp://localhost:2376" is outside`},
		"IPv4-mapped IPv6 is the IPv4 address": {policy: EndpointPolicy{Allowed: []string{"10.0.0.0/8"}}, spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://[::ffff:10.1.1.1]:2376"}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.policy.Check(tc.spec)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrEndpointNotAllowed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrEndpointNotAllowed with %q", err, tc.want)
			}
		})
	}
}

func TestParseEndpointsAllowed(t *testing.T) {
	got, err := ParseEndpointsAllowed(" 10.0.0.0/8, swarm.example.com,,::1 ")
	if err != nil || strings.Join(got, "|") != "10.0.0.0/8|swarm.example.com|::1" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "tcp://x:1", "user@host"} {
		if _, err := ParseEndpointsAllowed(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

type countingSwarms struct{ opened, forgot int }

func (c *countingSwarms) Open(context.Context, client.Reader, *swarmv1.SwarmCluster) (swarm.Swarm, error) {
	c.opened++
	return nil, nil
}
func (c *countingSwarms) Forget(ktypes.NamespacedName) { c.forgot++ }

// A refused cluster is never opened, and a connection it had is dropped.
func TestGuardedSwarmsNeverOpensARefusedCluster(t *testing.T) {
	inner := &countingSwarms{}
	g := GuardedSwarms{Swarms: inner}
	cluster := &swarmv1.SwarmCluster{Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"unix:///var/run/docker.sock"}}}
	if _, err := g.Open(context.Background(), nil, cluster); !errors.Is(err, ErrEndpointNotAllowed) {
		t.Fatalf("err %v", err)
	}
	if inner.opened != 0 || inner.forgot != 1 {
		t.Fatalf("opened %d, forgot %d", inner.opened, inner.forgot)
	}
	g.Policy.AllowUnix = true
	if _, err := g.Open(context.Background(), nil, cluster); err != nil || inner.opened != 1 {
		t.Fatalf("allowed: err %v, opened %d", err, inner.opened)
	}
}
