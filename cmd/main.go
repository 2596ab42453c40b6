// Command swarm-operator runs the controller manager (the default) or renders compose
// files the way the operator would deploy them (`swarm-operator render`).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"

	"os"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/controllers"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/security"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "render" {
		os.Exit(runRender(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(runManager())
}

func runManager() int {
	var metricsAddr, probeAddr string
	var leaderElect, secureMetrics, enableHTTP2, noCrossNamespaceRefs bool
	var artifactDir, eventsAddr string
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint (:8443 for HTTPS, :8080 for HTTP, 0 to disable).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health probe endpoint.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica writes to the swarms.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with authentication and authorization.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server (off because of HTTP/2 rapid-reset CVEs).")
	flag.BoolVar(&noCrossNamespaceRefs, "no-cross-namespace-refs", false, "Refuse SwarmStack sourceRef and dependsOn in another namespace than the stack's.")
	flag.StringVar(&artifactDir, "artifact-dir", "", "Directory that keeps unpacked Flux source artifacts (default a new temporary directory).")
	flag.StringVar(&eventsAddr, "events-addr", "", "Address of Flux's notification-controller (e.g. http://notification-controller.flux-system.svc.cluster.local./): each rollout's start and outcome is posted there.")
	var concurrent int
	var serviceRelist time.Duration
	flag.DurationVar(&serviceRelist, "swarm-service-relist", swarm.DefaultServiceRelist, "How often each Swarm's service cache lists every service again: the most the task counts a stack pass observes can lag, and how long an event stream that stopped sending can hide a change.")
	var watchLabelSelector string
	flag.IntVar(&concurrent, "concurrent", controllers.DefaultConcurrent, "How many SwarmStacks and SwarmClusters are reconciled at once (maintenances: one at a time).")
	flag.StringVar(&watchLabelSelector, "watch-label-selector", "", "Only SwarmStacks, SwarmClusters and SwarmNodeMaintenances with these labels (sharding, e.g. sharding.fluxcd.io/key=shard1); leader election is then per shard.")
	var securityDefault, allowedHostPaths, allowedHostPorts string
	flag.StringVar(&securityDefault, "stack-security-default", "privileged", "The security level every SwarmStack is held to at least: privileged, baseline or restricted (namespace label swarm.swarmops.io/enforce and SwarmCluster spec.securityLevel may be stricter).")
	flag.StringVar(&allowedHostPaths, "stack-security-allowed-host-paths", "", "Comma-separated host paths a baseline SwarmStack may bind-mount, with what is under them (never the Docker socket).")
	flag.StringVar(&allowedHostPorts, "stack-security-allowed-host-ports", "", "Comma-separated ports a baseline or restricted SwarmStack may publish in host mode (e.g. 80,443).")
	var endpointsAllowed string
	var allowInsecure, allowUnix bool
	flag.StringVar(&endpointsAllowed, "swarm-endpoints-allowed", "", "Comma-separated CIDRs, IP addresses, host names and *.suffixes that SwarmCluster tcp:// endpoints must match (default: any host, with mutual TLS).")
	flag.BoolVar(&allowInsecure, "allow-insecure-swarm-endpoints", false, "Allow SwarmClusters with insecure: true (plain TCP, no TLS).")
	flag.BoolVar(&allowUnix, "allow-unix-swarm-endpoints", false, "Allow SwarmCluster unix:// endpoints (sockets on the operator's own node).")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")
	stackSecurity, err := stackSecurityPolicy(securityDefault, allowedHostPaths, allowedHostPorts)
	if err != nil {
		log.Error(err, "Invalid flags")
		return 2
	}
	endpoints := reconcile.EndpointPolicy{AllowInsecure: allowInsecure, AllowUnix: allowUnix}
	if endpoints.Allowed, err = reconcile.ParseEndpointsAllowed(endpointsAllowed); err != nil {
		log.Error(err, "Invalid flags", "flag", "--swarm-endpoints-allowed")
		return 2
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(swarmv1.AddToScheme(scheme))
	utilruntime.Must(sourcev1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgrOpts := ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "swarm-operator.swarm.swarmops.io",
	}
	if err := controllers.ManagerOptions(&mgrOpts, watchLabelSelector); err != nil {
		log.Error(err, "Invalid flags")
		return 2
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), mgrOpts)
	if err != nil {
		log.Error(err, "Unable to create the manager")
		return 1
	}
	if err := controllers.Setup(mgr, controllers.Options{
		NoCrossNamespaceRefs: noCrossNamespaceRefs,
		Concurrent:           concurrent,
		WatchLabelSelector:   watchLabelSelector,
		Artifacts:            stack.ArtifactStoreOptions{Dir: artifactDir, Retries: 2},
		StackSecurity:        stackSecurity,
		SwarmEndpoints:       endpoints,
		EventsAddr:           eventsAddr,
		ServiceRelist:        serviceRelist,
	}); err != nil {
		log.Error(err, "Unable to set up the controllers")
		return 1
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Unable to set up the health check")
		return 1
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "Unable to set up the ready check")
		return 1
	}
	log.Info("Starting the manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "Manager stopped")
		return 1
	}
	return 0
}

// stackSecurityPolicy reads the --stack-security-* flags.
func stackSecurityPolicy(level, paths, ports string) (security.Policy, error) {
	var p security.Policy
	var err error
	if p.Level, err = security.ParseLevel(level); err != nil {
		return p, fmt.Errorf("--stack-security-default: %w", err)
	}
	if p.AllowedHostPaths, err = security.ParsePaths(paths); err != nil {
		return p, fmt.Errorf("--stack-security-allowed-host-paths: %w", err)
	}
	if p.AllowedHostPorts, err = security.ParsePorts(ports); err != nil {
		return p, fmt.Errorf("--stack-security-allowed-host-ports: %w", err)
	}
	return p, nil
}
