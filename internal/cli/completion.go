package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// Completion of names asks the API server; a slow or refused answer completes nothing
// rather than holding the shell.
const completionTimeout = 3 * time.Second

func (e *env) stackNames(g *globalFlags) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return e.completeNames(g, "SwarmStack"), cobra.ShellCompDirectiveNoFileComp
	}
}

func (e *env) completeNames(g *globalFlags, kind string) []string {
	if e.setUp(g) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	var names []string
	opts := []client.ListOption{client.InNamespace(e.namespace)}
	switch kind {
	case "SwarmStack":
		var l swarmv1.SwarmStackList
		if e.c.List(ctx, &l, opts...) == nil {
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
		}
	case "SwarmCluster":
		var l swarmv1.SwarmClusterList
		if e.c.List(ctx, &l, opts...) == nil {
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
		}
	case "SwarmStackSet":
		var l swarmv1.SwarmStackSetList
		if e.c.List(ctx, &l, opts...) == nil {
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
		}
	case "SwarmNodeMaintenance":
		var l swarmv1.SwarmNodeMaintenanceList
		if e.c.List(ctx, &l, opts...) == nil {
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

func (e *env) completeNamespaces(g *globalFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if e.setUp(g) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
		defer cancel()
		var l corev1.NamespaceList
		var out []string
		if e.c.List(ctx, &l) == nil {
			for _, ns := range l.Items {
				if strings.HasPrefix(ns.Name, prefix) {
					out = append(out, ns.Name)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func completeContexts(g *globalFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		raw, err := kubeconfig(g).RawConfig()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for name := range raw.Contexts {
			if strings.HasPrefix(name, prefix) {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
