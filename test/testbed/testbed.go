// Package testbed brings up what the integration tests and `make demo` run against: a
// real kube-apiserver and etcd (envtest) with our CRDs, a real sandbox Swarm, and the
// operator's controllers in-process.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/controllers"
	"github.com/swarmops/swarm-operator/internal/sandbox"
)

// Scheme knows the core kinds and ours.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(swarmv1.AddToScheme(s))
	return s
}()

// FastRolloutOverride is a compose override for the numbers stack that the tests and the
// demo add last: short monitors and health intervals keep a rollout to seconds, and
// parallelism, order and failure actions stay as the other files say.
const FastRolloutOverride = `services:
  numbers-api:
    deploy:
      update_config: {monitor: 1s}
      rollback_config: {monitor: 1s}
  numbers-web:
    healthcheck: {interval: 1s, start_period: 1s}
    deploy:
      update_config: {monitor: 1s}
      rollback_config: {monitor: 1s}
`

// Options size the test bed.
type Options struct {
	Managers, Workers int
	// Name prefixes the sandbox's nodes.
	Name string
	Logf func(format string, args ...any)
}

// Bed is a running control plane and swarm.
type Bed struct {
	Config *rest.Config
	Client client.Client
	Swarm  *sandbox.Swarm

	env *envtest.Environment
}

// Start brings up envtest (KUBEBUILDER_ASSETS must point at kube-apiserver and etcd; see
// hack/envtest-assets.sh) and a sandbox swarm with the numbers images loaded. On error
// everything started so far is stopped.
func Start(ctx context.Context, opts Options) (_ *Bed, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	b, err := newBed()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = b.Stop()
		}
	}()
	type swarmResult struct {
		s   *sandbox.Swarm
		err error
	}
	// The swarm takes longest; start the control plane meanwhile.
	swarmCh := make(chan swarmResult, 1)
	go func() {
		images, err := sandbox.NumbersImages(ctx)
		if err != nil {
			swarmCh <- swarmResult{err: err}
			return
		}
		s, err := sandbox.Start(ctx, sandbox.Options{Name: opts.Name, Managers: opts.Managers, Workers: opts.Workers, ImagesTar: images, Logf: opts.Logf})
		swarmCh <- swarmResult{s, err}
	}()
	envErr := b.startControlPlane()
	res := <-swarmCh
	b.Swarm = res.s
	if envErr != nil {
		return nil, envErr
	}
	if res.err != nil {
		return nil, fmt.Errorf("starting the sandbox swarm: %w", res.err)
	}
	return b, nil
}

// StartControlPlane brings up envtest alone (Swarm stays nil), for runs whose swarms are
// in memory (controllers.Options.Swarms). On error nothing is left running.
func StartControlPlane() (*Bed, error) {
	b, err := newBed()
	if err != nil {
		return nil, err
	}
	if err := b.startControlPlane(); err != nil {
		_ = b.Stop()
		return nil, err
	}
	return b, nil
}

func newBed() (*Bed, error) {
	root, err := sandbox.RepoRoot()
	if err != nil {
		return nil, err
	}
	return &Bed{env: &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}}, nil
}

func (b *Bed) startControlPlane() error {
	cfg, err := b.env.Start()
	if err != nil {
		return fmt.Errorf("starting envtest (is KUBEBUILDER_ASSETS set? see hack/envtest-assets.sh): %w", err)
	}
	b.Config = cfg
	b.Client, err = client.New(cfg, client.Options{Scheme: Scheme})
	return err
}

// Stop tears everything down; it is safe to call more than once.
func (b *Bed) Stop() error {
	var errs []error
	if b.env != nil && b.Config != nil {
		errs = append(errs, b.env.Stop())
		b.Config = nil
	}
	if b.Swarm != nil {
		errs = append(errs, b.Swarm.Close())
		b.Swarm = nil
	}
	return errors.Join(errs...)
}

// StartOperator runs the controllers in-process until the returned stop is called.
func (b *Bed) StartOperator(opts controllers.Options) (stop func(), err error) {
	op, err := b.StartOperatorWith(opts, OperatorOptions{})
	if err != nil {
		return nil, err
	}
	return op.Stop, nil
}

// OperatorOptions are the settings of one operator instance beyond the controllers'.
// The zero value is what StartOperator uses.
type OperatorOptions struct {
	// Logger is the instance's logger, which its controllers log through; unset, the
	// global one (ctrl.Log).
	Logger logr.Logger
	// LeaderElection, when set, makes the instance campaign for a Lease and run its
	// controllers only while it leads, as replicas of a Deployment do.
	LeaderElection *LeaderElection
	// WatchLabelSelector makes the instance one shard (controllers.ManagerOptions).
	WatchLabelSelector string
}

// LeaderElection says which Lease instances campaign for, and how fast.
type LeaderElection struct {
	// ID names the Lease: every instance of one operator uses the same. Namespace
	// holds it (default "default").
	ID, Namespace string
	// Unset: 4s, 3s and 1s, so that a takeover happens within seconds (the
	// manager's defaults are 15s, 10s and 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Operator is one running operator instance.
type Operator struct {
	mgr    ctrl.Manager
	cancel context.CancelFunc
	done   chan struct{}
}

// StartOperatorWith runs an operator instance in-process until its Stop is called.
func (b *Bed) StartOperatorWith(opts controllers.Options, op OperatorOptions) (*Operator, error) {
	mo := ctrl.Options{
		Scheme:                 Scheme,
		Logger:                 op.Logger,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Tests restart the operator in one process, as after a crash, and run several
		// instances side by side: the controller names are registered more than once.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if le := op.LeaderElection; le != nil {
		or := func(d, def time.Duration) *time.Duration {
			if d == 0 {
				d = def
			}
			return &d
		}
		mo.LeaderElection = true
		mo.LeaderElectionID = le.ID
		mo.LeaderElectionNamespace = le.Namespace
		if mo.LeaderElectionNamespace == "" {
			mo.LeaderElectionNamespace = "default"
		}
		mo.LeaseDuration = or(le.LeaseDuration, 4*time.Second)
		mo.RenewDeadline = or(le.RenewDeadline, 3*time.Second)
		mo.RetryPeriod = or(le.RetryPeriod, time.Second)
		// Stop is a crash: the Lease is not handed over, it expires.
		mo.LeaderElectionReleaseOnCancel = false
	}
	if err := controllers.ManagerOptions(&mo, op.WatchLabelSelector); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(b.Config, mo)
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, opts); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &Operator{mgr: mgr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		_ = mgr.Start(ctx)
	}()
	return o, nil
}

// Stop ends the instance and waits for it; safe to call more than once. A leader keeps
// its Lease until it expires, as after a crash.
func (o *Operator) Stop() {
	o.cancel()
	<-o.done
}

// Elected is closed once the instance leads (at once without leader election).
func (o *Operator) Elected() <-chan struct{} { return o.mgr.Elected() }

// CreateCluster creates, in namespace ns, a TLS Secret with the sandbox's client
// certificate and a SwarmCluster listing the managers' endpoints, exactly as a user would
// for a remote swarm.
func (b *Bed) CreateCluster(ctx context.Context, ns, name string) (*swarmv1.SwarmCluster, error) {
	return b.CreateClusterOn(ctx, b.Swarm, ns, name)
}

// CreateClusterOn is CreateCluster for another sandbox Swarm than the bed's own (one of
// StartSwarms').
func (b *Bed) CreateClusterOn(ctx context.Context, sw *sandbox.Swarm, ns, name string) (*swarmv1.SwarmCluster, error) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-tls"},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"ca.crt":  sw.CACertPEM,
			"tls.crt": sw.ClientCertPEM,
			"tls.key": sw.ClientKeyPEM,
		},
	}
	if err := b.Client.Create(ctx, secret); err != nil {
		return nil, err
	}
	var endpoints []string
	for _, m := range sw.Managers() {
		endpoints = append(endpoints, m.Endpoint)
	}
	cluster := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: swarmv1.SwarmClusterSpec{
			Endpoints:    endpoints,
			TLSSecretRef: &swarmv1.LocalObjectReference{Name: secret.Name},
			Interval:     &metav1.Duration{Duration: 5 * time.Second},
		},
	}
	return cluster, b.Client.Create(ctx, cluster)
}

// Namespace creates a namespace with a generated name.
func (b *Bed) Namespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := b.Client.Create(ctx, ns); err != nil {
		return "", err
	}
	return ns.Name, nil
}

// StartSwarms starts one more sandbox Swarm per name, each a single manager with the
// numbers images loaded, all at once: the other Swarms of a fleet, where one manager is
// enough and each costs one dockerd. Names are sandbox.Options.Name. On error none is
// left running; otherwise the caller closes each.
func StartSwarms(ctx context.Context, logf func(format string, args ...any), names ...string) ([]*sandbox.Swarm, error) {
	images, err := sandbox.NumbersImages(ctx)
	if err != nil {
		return nil, err
	}
	swarms := make([]*sandbox.Swarm, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			swarms[i], errs[i] = sandbox.Start(ctx, sandbox.Options{Name: name, Managers: 1, ImagesTar: images, Logf: logf})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, sw := range swarms {
			if sw != nil {
				err = errors.Join(err, sw.Close())
			}
		}
		return nil, err
	}
	return swarms, nil
}
