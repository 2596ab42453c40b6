package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// ErrEndpointNotAllowed marks a SwarmCluster whose endpoints the operator refuses to
// connect to (EndpointPolicy).
var ErrEndpointNotAllowed = errors.New("endpoint not allowed")

// EndpointPolicy is where the operator may connect on behalf of SwarmCluster authors.
// Its zero value allows any tcp:// endpoint with mutual TLS, and nothing else: without
// it whoever may create a SwarmCluster makes the operator a Docker client of any host
// (plain TCP, or a unix socket on the operator's own node).
type EndpointPolicy struct {
	// Allowed are CIDRs (10.0.0.0/8, 2001:db8::/32), IP addresses, host names
	// (swarm.example.com) and name suffixes (*.swarm.example.com) that tcp:// endpoints
	// must match (--swarm-endpoints-allowed). A host name is matched as a name, never
	// resolved to match a CIDR: DNS would decide otherwise. Empty allows any host.
	Allowed []string
	// AllowInsecure allows insecure: true (--allow-insecure-swarm-endpoints).
	AllowInsecure bool
	// AllowUnix allows unix:// endpoints (--allow-unix-swarm-endpoints).
	AllowUnix bool
}

// ParseEndpointsAllowed reads the comma-separated --swarm-endpoints-allowed.
func ParseEndpointsAllowed(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			if _, err := netip.ParsePrefix(f); err != nil {
				return nil, fmt.Errorf("%q is no CIDR: %w", f, err)
			}
		} else if strings.ContainsAny(f, ":@ ") && net.ParseIP(f) == nil {
			return nil, fmt.Errorf("%q is no CIDR, IP address or host name", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// Check says which rule refuses the cluster's endpoints, or nil.
func (p EndpointPolicy) Check(spec swarmv1.SwarmClusterSpec) error {
	if spec.Insecure && !p.AllowInsecure {
		return fmt.Errorf("%w: insecure: true is refused: the operator connects with mutual TLS only, unless started with --allow-insecure-swarm-endpoints", ErrEndpointNotAllowed)
	}
	for _, ep := range spec.Endpoints {
		if err := p.checkEndpoint(ep); err != nil {
			return err
		}
	}
	return nil
}

func (p EndpointPolicy) checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil {
		return nil //nolint:nilerr // the connection refuses it, naming what is wrong (InvalidSpec)
	}
	switch u.Scheme {
	case "unix":
		if !p.AllowUnix {
			return fmt.Errorf("%w: endpoint %q is refused: a unix socket is on the operator's own node; allowed only when the operator is started with --allow-unix-swarm-endpoints", ErrEndpointNotAllowed, ep)
		}
		return nil
	case "tcp":
	default:
		return nil // the connection refuses it (InvalidSpec)
	}
	if len(p.Allowed) == 0 || hostAllowed(u.Hostname(), p.Allowed) {
		return nil
	}
	return fmt.Errorf("%w: endpoint %q is outside the operator's --swarm-endpoints-allowed (%s)", ErrEndpointNotAllowed, ep, strings.Join(p.Allowed, ","))
}

func hostAllowed(host string, allowed []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	addr, addrErr := netip.ParseAddr(host)
	for _, a := range allowed {
		a = strings.ToLower(a)
		switch {
		case strings.Contains(a, "/"):
			if pre, err := netip.ParsePrefix(a); err == nil && addrErr == nil && pre.Contains(addr.Unmap()) {
				return true
			}
		case strings.HasPrefix(a, "*."):
			if addrErr != nil && strings.HasSuffix(host, a[1:]) {
				return true
			}
		default:
			if ip, err := netip.ParseAddr(a); err == nil {
				if addrErr == nil && ip == addr.Unmap() {
					return true
				}
			} else if host == strings.TrimSuffix(a, ".") {
				return true
			}
		}
	}
	return false
}

// GuardedSwarms opens a SwarmCluster's Swarm only when the policy allows its endpoints:
// every controller opens Swarms through it, so none connects where the operator may not.
type GuardedSwarms struct {
	Swarms
	Policy EndpointPolicy
}

// Open refuses a cluster the policy does not allow (ErrEndpointNotAllowed).
func (g GuardedSwarms) Open(ctx context.Context, c client.Reader, cluster *swarmv1.SwarmCluster) (swarm.Swarm, error) {
	if err := g.Policy.Check(cluster.Spec); err != nil {
		g.Forget(ktypes.NamespacedName{Namespace: cluster.Namespace, Name: cluster.Name})
		return nil, err
	}
	return g.Swarms.Open(ctx, c, cluster)
}
