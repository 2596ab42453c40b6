// Package swarm is the operator's only door to Docker Swarm: a pool of connections to
// the managers of each SwarmCluster, with fail-over between endpoints, and the few
// domain operations the controllers need.
package swarm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// Target says how to reach one Swarm.
type Target struct {
	Endpoints []string
	// CA, Cert and Key are PEM; all empty means no TLS.
	CA, Cert, Key []byte
	Insecure      bool
}

// Typed failures the controllers turn into condition reasons.
var (
	ErrUnreachable = errors.New("no endpoint answered")
	ErrTLS         = errors.New("TLS handshake failed")
	ErrNotAManager = errors.New("endpoint is not a manager of the swarm")
	ErrNotInSwarm  = errors.New("endpoint is not part of a swarm")
	ErrQuorumLost  = errors.New("the swarm has no leader: quorum is lost")
	ErrInvalid     = errors.New("invalid endpoint")
)

// Timeouts bound every call so a paused daemon cannot hold a reconcile worker.
const (
	dialTimeout = 3 * time.Second
	callTimeout = 20 * time.Second
	// readTimeout bounds a read: a manager answers those in milliseconds, so a hung
	// one (TCP accepted, nothing answered) is told in seconds. Writes keep callTimeout:
	// a create that resolves an image asks the registry.
	readTimeout = 5 * time.Second
	// parkFor is how long a swarm none of whose managers answered is not asked again:
	// its objects then fail at once instead of each paying the timeouts, and workers
	// stay free for the other swarms. Health (the SwarmCluster's probe) still asks.
	parkFor = 10 * time.Second
)

// Conn is a connection to one Swarm through whichever of its managers answers.
// It is safe for concurrent use.
type Conn struct {
	endpoints []string
	clients   []*client.Client

	mu      sync.Mutex
	current int
	version string // negotiated API version of the current endpoint
	// parkedUntil and parkedBy: no endpoint answered; calls fail at once until then.
	// Past parkedUntil one call at a time (trialOut) tries the swarm again while the
	// others still fail at once: a swarm that flaps between hung and answering holds one
	// worker for a timeout per parking, not every worker that reaches it.
	parkedUntil time.Time
	parkedBy    error
	trialOut    bool
	now         func() time.Time
	callTimeout time.Duration // callTimeout unless a test sets it
}

type probeKey struct{}

// probe marks a call that goes through even while the swarm is parked.
func probe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

// parked returns the error that parked the swarm, while it stays parked. Past the
// parking time the first call goes out as the trial (trial true; the caller ends it
// with endTrial) and the others keep failing until it has answered.
func (c *Conn) parked(ctx context.Context) (trial bool, err error) {
	if ctx.Value(probeKey{}) != nil {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parkedBy == nil {
		return false, nil
	}
	if !c.clock().Before(c.parkedUntil) && !c.trialOut {
		c.trialOut = true
		return true, nil
	}
	if c.trialOut {
		return false, fmt.Errorf("%w: another call is finding out whether it answers again, as no manager answered: %w", ErrParked, c.parkedBy)
	}
	return false, fmt.Errorf("%w: not asked again until %s, as no manager answered: %w", ErrParked, c.parkedUntil.UTC().Format(time.RFC3339), c.parkedBy)
}

func (c *Conn) endTrial() {
	c.mu.Lock()
	c.trialOut = false
	c.mu.Unlock()
}

func (c *Conn) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// ErrParked says a call was not made: the swarm did not answer moments ago. It wraps
// the failure that parked it, so errors.Is(err, ErrUnreachable) still holds.
var ErrParked = errors.New("swarm parked")

// NewConn validates the target and prepares one client per endpoint. Nothing is dialled.
func NewConn(t Target) (*Conn, error) {
	if len(t.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: the endpoint list is empty", ErrInvalid)
	}
	var tlsConfig *tls.Config
	if len(t.CA) > 0 || len(t.Cert) > 0 || len(t.Key) > 0 {
		cfg, err := clientTLS(t)
		if err != nil {
			return nil, err
		}
		tlsConfig = cfg
	}
	c := &Conn{endpoints: t.Endpoints}
	for _, ep := range t.Endpoints {
		cli, err := newClient(ep, tlsConfig, t.Insecure)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.clients = append(c.clients, cli)
	}
	return c, nil
}

func clientTLS(t Target) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(t.CA) {
		return nil, fmt.Errorf("%w: ca.crt holds no PEM certificate", ErrTLS)
	}
	pair, err := tls.X509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: tls.crt/tls.key: %w", ErrTLS, err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

func newClient(endpoint string, tlsConfig *tls.Config, insecure bool) (*client.Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" && u.Path == "" {
		return nil, fmt.Errorf("%w %q: want tcp://host:port or unix:///path", ErrInvalid, endpoint)
	}
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: callTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	switch u.Scheme {
	case "tcp":
		if u.Port() == "" {
			return nil, fmt.Errorf("%w %q: tcp endpoints need a port", ErrInvalid, endpoint)
		}
		if tlsConfig == nil && !insecure {
			return nil, fmt.Errorf("%w %q: plain tcp without TLS is refused unless insecure is true", ErrInvalid, endpoint)
		}
		transport.TLSClientConfig = tlsConfig
	case "unix":
		path := u.Path
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: dialTimeout}).DialContext(ctx, "unix", path)
		}
	default:
		return nil, fmt.Errorf("%w %q: scheme must be tcp or unix", ErrInvalid, endpoint)
	}
	opts := []client.Opt{
		client.WithHost(endpoint),
		client.WithHTTPClient(&http.Client{Transport: countingTransport{endpoint: endpoint, next: transport}}),
		client.WithAPIVersionNegotiation(),
	}
	if tlsConfig != nil {
		opts = append(opts, client.WithScheme("https"))
	}
	return client.NewClientWithOpts(opts...)
}

// Close releases the idle connections of every endpoint.
func (c *Conn) Close() {
	for _, cli := range c.clients {
		_ = cli.Close()
	}
}

// Endpoint is the endpoint in use and its negotiated API version.
func (c *Conn) Endpoint() (endpoint, apiVersion string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints[c.current], c.version
}

// read runs a call that changes nothing, with the shorter read timeout.
func (c *Conn) read(ctx context.Context, fn func(ctx context.Context, cli *client.Client) error) error {
	return c.call(ctx, readTimeout, fn)
}

// do runs a call that may write, with the longer call timeout.
func (c *Conn) do(ctx context.Context, fn func(ctx context.Context, cli *client.Client) error) error {
	return c.call(ctx, callTimeout, fn)
}

// call runs fn against the endpoint in use; when that endpoint does not answer, or is
// no longer a manager, it moves on to the next one, so callers never see a single
// manager's loss. Other errors (bad request, conflict) return at once.

func (c *Conn) call(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, cli *client.Client) error) error {
	trial, err := c.parked(ctx)
	if err != nil {
		return err
	}
	if trial {
		// Ended once its outcome is in: a failed trial parks the swarm again first.
		defer c.endTrial()
	}
	c.mu.Lock()
	start := c.current
	c.mu.Unlock()
	var errs []error
	for i := range c.clients {
		idx := (start + i) % len(c.clients)
		cli := c.clients[idx]
		if c.callTimeout > 0 {
			timeout = c.callTimeout
		}
		callCtx, cancel := context.WithTimeout(ctx, timeout)
		err := fn(callCtx, cli)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.current = idx
			c.version = cli.ClientVersion()
			c.parkedBy = nil
			c.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		kind := classify(err)
		// A version conflict is Swarm's answer (a 500 "update out of sequence"), not a
		// sign the endpoint is gone: another manager would only say the same.
		if kind == nil || errors.Is(err, ErrVersionConflict) {
			// The endpoint answered; the failure is about the request itself.
			c.mu.Lock()
			c.current = idx
			c.parkedBy = nil
			c.mu.Unlock()
			return err
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.endpoints[idx], kind))
	}
	err = joinEndpointErrors(errs)
	if errors.Is(err, ErrUnreachable) {
		c.mu.Lock()
		c.parkedUntil, c.parkedBy = c.clock().Add(parkFor), err
		c.mu.Unlock()
	}
	return err
}

// joinEndpointErrors keeps the most telling cause first so errors.Is finds it.
func joinEndpointErrors(errs []error) error {
	for _, want := range []error{ErrQuorumLost, ErrTLS, ErrNotInSwarm, ErrNotAManager} {
		for _, e := range errs {
			if errors.Is(e, want) {
				return fmt.Errorf("%w (%v)", want, errors.Join(errs...)) //nolint:errorlint // only the chosen cause may match errors.Is
			}
		}
	}
	return fmt.Errorf("%w (%v)", ErrUnreachable, errors.Join(errs...)) //nolint:errorlint // only the chosen cause may match errors.Is
}

// classify returns the reason to try another endpoint, or nil when the error is the
// request's own. Docker reports "not a manager", "not in a swarm" and "no leader" only as
// 503 with a message, so those three are told apart by their text.
func classify(err error) error {
	var tlsErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var unknownAuthority x509.UnknownAuthorityError
	msg := err.Error()
	switch {
	case errors.As(err, &tlsErr), errors.As(err, &recordErr), errors.As(err, &unknownAuthority),
		strings.Contains(msg, "tls: "), strings.Contains(msg, "x509: "):
		return fmt.Errorf("%w: %w", ErrTLS, err)
	case cerrdefs.IsUnavailable(err) || cerrdefs.IsInternal(err):
		switch {
		case strings.Contains(msg, "does not have a leader"), strings.Contains(msg, "no leader"):
			return fmt.Errorf("%w: %w", ErrQuorumLost, err)
		case strings.Contains(msg, "not part of a swarm"), strings.Contains(msg, "not a swarm manager") && strings.Contains(msg, "swarm init"):
			return fmt.Errorf("%w: %w", ErrNotInSwarm, err)
		case strings.Contains(msg, "not a swarm manager"):
			return fmt.Errorf("%w: %w", ErrNotAManager, err)
		}
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	case client.IsErrConnectionFailed(err), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &netErr) || errors.As(err, &opErr) || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset") {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return nil
}

// Info returns the daemon info of a manager of an active swarm.
func (c *Conn) Info(ctx context.Context) (system.Info, error) {
	var info system.Info
	err := c.read(ctx, func(ctx context.Context, cli *client.Client) error {
		i, err := cli.Info(ctx)
		if err != nil {
			return err
		}
		switch {
		case i.Swarm.LocalNodeState != "active":
			return errdefs.Unavailable(fmt.Errorf("node %s is not part of a swarm (state %q)", i.Name, i.Swarm.LocalNodeState))
		case !i.Swarm.ControlAvailable:
			return errdefs.Unavailable(fmt.Errorf("node %s is not a swarm manager", i.Name))
		}
		info = i
		return nil
	})
	return info, err
}
