// Package cli is `kubectl swarm`, the kubectl plugin for SwarmStacks, SwarmClusters and
// SwarmNodeMaintenances: tables, history and events, the imperative requests (reconcile,
// suspend, resume, rollback, retry) acted on and confirmed, and diff and tree against the
// live Swarm. It reads the kubeconfig as kubectl does.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// Exit codes. diff follows `flux diff`: 0 no change, 1 changes, 2 error. reconcile --wait:
// 0 Completed, 1 the rollout did not complete (rolled back, paused, deadline exceeded, a
// compose error, a conflict), 2 an error of the command, 3 the timeout passed first.
const (
	ExitOK      = 0
	ExitFailed  = 1
	ExitChanges = 1
	ExitError   = 2
	ExitTimeout = 3
)

// exitError carries an exit code up to Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// failed is a command that ran and found the outcome wanting (exit 1).
func failed(format string, args ...any) error {
	return withCode(ExitFailed, fmt.Errorf(format, args...))
}

// SwarmOpener opens the Swarm of a SwarmCluster for diff and tree.
type SwarmOpener func(ctx context.Context, c client.Reader, cluster *swarmv1.SwarmCluster) (swarm.Swarm, error)

// Options are what the commands run with. Zero values mean the real thing: the
// kubeconfig, the Swarm reached through the cluster's endpoints and TLS Secret, the wall
// clock.
type Options struct {
	Stdout, Stderr io.Writer
	// Client replaces the client built from the kubeconfig (tests).
	Client client.Client
	// Namespace used with Client when -n is not given.
	Namespace string
	// OpenSwarm replaces the connection through the SwarmCluster (tests).
	OpenSwarm SwarmOpener
	Now       func() time.Time
	// Poll is how often --wait and the confirmations re-read the object. Default 1s.
	Poll time.Duration
	// StalledSettle: how long a Stalled condition of the current generation may stand
	// with the request not handled before it is the answer. Default 5s. The operator
	// stops a pass on a compose error before it notes the request, so that request is
	// never marked handled; a source fixed meanwhile is re-read well within this time.
	StalledSettle time.Duration
}

// env is one command's world, built from the flags.
type env struct {
	opts          Options
	out, errOut   io.Writer
	c             client.Client
	namespace     string
	allNamespaces bool
	operatorNS    string
}

type globalFlags struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
	operatorNS    string
}

// Scheme knows the built-in kinds and the operator's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = swarmv1.AddToScheme(s)
	return s
}

// NewCommand is the `kubectl swarm` command tree.
func NewCommand(opts Options) *cobra.Command {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Poll == 0 {
		opts.Poll = time.Second
	}
	if opts.StalledSettle == 0 {
		opts.StalledSettle = 5 * time.Second
	}
	g := &globalFlags{}
	e := &env{opts: opts}
	root := &cobra.Command{
		Use:   "kubectl-swarm",
		Short: "Docker Swarm releases run by swarm-operator: status, history, diff and requests",
		Long: `kubectl swarm reads and steers SwarmStacks, SwarmClusters, SwarmNodeMaintenances and
SwarmStackSets.

It reads the kubeconfig as kubectl does (--kubeconfig, --context, -n, -A). diff and tree
reach the Swarm through the SwarmCluster's endpoints and TLS Secret: they need read access
(get) to that Secret, and to the operator's naming key Secret for diff.`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl swarm"},
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Completion scripts and completion requests need no cluster; the completion
			// functions connect themselves and complete nothing when they cannot.
			for c := cmd; c != nil; c = c.Parent() {
				switch c.Name() {
				case "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
					return nil
				}
			}
			return e.setUp(g)
		},
	}
	root.SetOut(opts.Stdout)
	root.SetErr(opts.Stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	pf.StringVar(&g.context, "context", "", "the kubeconfig context to use")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "the namespace (default: the context's)")
	pf.BoolVarP(&g.allNamespaces, "all-namespaces", "A", false, "list in every namespace (get)")
	pf.StringVar(&g.operatorNS, "operator-namespace", "swarm-operator-system", "namespace of the operator, where its naming key Secret is kept (diff)")
	_ = root.RegisterFlagCompletionFunc("namespace", e.completeNamespaces(g))
	_ = root.RegisterFlagCompletionFunc("context", completeContexts(g))

	root.AddCommand(e.getCommand(g), e.treeCommand(g), e.diffCommand(g), e.historyCommand(g), e.eventsCommand(g),
		e.reconcileCommand(g), e.suspendCommand(g, true), e.suspendCommand(g, false),
		e.annotateCommand(g, "rollback", swarmv1.AnnotationRollback), e.annotateCommand(g, "retry", swarmv1.AnnotationRetry),
		e.approveCommand(g),
		renderCommand())
	return root
}

// Main runs the command line and returns the process's exit code.
func Main(ctx context.Context, args []string, opts Options) int {
	root := NewCommand(opts)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(opts.Stderr, "Error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(opts.Stderr, "Error:", err)
	return ExitError
}

func (e *env) setUp(g *globalFlags) error {
	e.out, e.errOut = e.opts.Stdout, e.opts.Stderr
	e.allNamespaces, e.operatorNS = g.allNamespaces, g.operatorNS
	if e.opts.Client != nil {
		e.c = e.opts.Client
		e.namespace = g.namespace
		if e.namespace == "" {
			e.namespace = e.opts.Namespace
		}
		if e.namespace == "" {
			e.namespace = "default"
		}
		return nil
	}
	cc := kubeconfig(g)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return withCode(ExitError, fmt.Errorf("reading the kubeconfig: %w", err))
	}
	ns := g.namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil {
			return withCode(ExitError, err)
		}
	}
	e.namespace = ns
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return withCode(ExitError, err)
	}
	e.c = c
	return nil
}

// kubeconfig loads the kubeconfig the way kubectl does.
func kubeconfig(g *globalFlags) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if g.kubeconfig != "" {
		rules.ExplicitPath = g.kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: g.context}
	if g.namespace != "" {
		overrides.Context.Namespace = g.namespace
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

func (e *env) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: e.namespace, Name: name}
}

func (e *env) stack(ctx context.Context, name string) (*swarmv1.SwarmStack, error) {
	var s swarmv1.SwarmStack
	if err := e.c.Get(ctx, e.key(name), &s); err != nil {
		return nil, withCode(ExitError, fmt.Errorf("SwarmStack %s/%s: %w", e.namespace, name, err))
	}
	return &s, nil
}
