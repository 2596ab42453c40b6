package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// kinds maps what users type to the kind it means.
var kinds = map[string]string{
	"stack": "SwarmStack", "stacks": "SwarmStack", "swarmstack": "SwarmStack", "swarmstacks": "SwarmStack",
	"cluster": "SwarmCluster", "clusters": "SwarmCluster", "swarmcluster": "SwarmCluster", "swarmclusters": "SwarmCluster",
	"maintenance": "SwarmNodeMaintenance", "maintenances": "SwarmNodeMaintenance",
	"swarmnodemaintenance": "SwarmNodeMaintenance", "swarmnodemaintenances": "SwarmNodeMaintenance",
	"set": "SwarmStackSet", "sets": "SwarmStackSet", "stackset": "SwarmStackSet", "stacksets": "SwarmStackSet",
	"swarmstackset": "SwarmStackSet", "swarmstacksets": "SwarmStackSet",
}

func (e *env) getCommand(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get stacks|clusters|maintenances|sets [NAME]",
		Short: "List SwarmStacks, SwarmClusters, SwarmNodeMaintenances or SwarmStackSets; one stack with its services, one set with its steps, clusters and history",
		Args:  cobra.RangeArgs(1, 2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"stacks", "clusters", "maintenances", "sets"}, cobra.ShellCompDirectiveNoFileComp
			}
			return e.completeNames(g, kinds[strings.ToLower(args[0])]), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, ok := kinds[strings.ToLower(args[0])]
			if !ok {
				return withCode(ExitError, fmt.Errorf("unknown kind %q: want stacks, clusters, maintenances or sets", args[0]))
			}
			if output != "" && output != "yaml" && output != "json" {
				return withCode(ExitError, fmt.Errorf("-o %q: want yaml or json", output))
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			return e.get(cmd.Context(), kind, name, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "yaml or json (default: a table)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (e *env) listOptions() []client.ListOption {
	if e.allNamespaces {
		return nil
	}
	return []client.ListOption{client.InNamespace(e.namespace)}
}

func (e *env) get(ctx context.Context, kind, name, output string) error {
	var obj client.Object
	var list client.ObjectList
	switch kind {
	case "SwarmStack":
		obj, list = &swarmv1.SwarmStack{}, &swarmv1.SwarmStackList{}
	case "SwarmCluster":
		obj, list = &swarmv1.SwarmCluster{}, &swarmv1.SwarmClusterList{}
	case "SwarmStackSet":
		obj, list = &swarmv1.SwarmStackSet{}, &swarmv1.SwarmStackSetList{}
	default:
		obj, list = &swarmv1.SwarmNodeMaintenance{}, &swarmv1.SwarmNodeMaintenanceList{}
	}
	var items []client.Object
	if name != "" {
		if err := e.c.Get(ctx, e.key(name), obj); err != nil {
			return withCode(ExitError, fmt.Errorf("%s %s/%s: %w", kind, e.namespace, name, err))
		}
		items = []client.Object{obj}
	} else {
		if err := e.c.List(ctx, list, e.listOptions()...); err != nil {
			return withCode(ExitError, fmt.Errorf("listing %ss: %w", kind, err))
		}
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			items = append(items, o.(client.Object))
			return nil
		})
	}
	if output != "" {
		setKinds(kind, items)
		if name != "" {
			return printStructured(e.out, items[0], output)
		}
		list.GetObjectKind().SetGroupVersionKind(swarmv1.GroupVersion.WithKind(kind + "List"))
		return printStructured(e.out, list, output)
	}
	now := e.opts.Now()
	w := tabwriter.NewWriter(e.out, 0, 4, 3, ' ', 0)
	ns := e.allNamespaces && name == ""
	switch kind {
	case "SwarmStack":
		header(w, ns, "NAME", "CLUSTER", "VERSION", "READY", "STATUS", "AGE")
		for _, o := range items {
			s := o.(*swarmv1.SwarmStack)
			st, msg := readyOf(s.Status.Conditions)
			row(w, ns, s.Namespace, s.Name, s.Spec.ClusterRef.Name, s.Spec.Version, st, msg, age(s.CreationTimestamp, now))
		}
	case "SwarmCluster":
		header(w, ns, "NAME", "ENDPOINT", "MANAGERS", "READY", "STATUS", "AGE")
		for _, o := range items {
			c := o.(*swarmv1.SwarmCluster)
			st, msg := readyOf(c.Status.Conditions)
			managers := ""
			if m := c.Status.Managers; m != nil {
				managers = fmt.Sprintf("%d/%d", m.Reachable, m.Total)
			}
			row(w, ns, c.Namespace, c.Name, c.Status.Endpoint, managers, st, msg, age(c.CreationTimestamp, now))
		}
	case "SwarmStackSet":
		header(w, ns, "NAME", "CLUSTERS", "STEP", "REVISION", "READY", "STATUS", "AGE")
		for _, o := range items {
			s := o.(*swarmv1.SwarmStackSet)
			st, msg := readyOf(s.Status.Conditions)
			row(w, ns, s.Namespace, s.Name, orDash(s.Status.ClustersSummary), orDash(s.Status.CurrentStep), shortRevision(s.Status.Revision), st, msg, age(s.CreationTimestamp, now))
		}
	default:
		header(w, ns, "NAME", "CLUSTER", "NODES", "PHASE", "NEXT WINDOW", "AGE")
		for _, o := range items {
			m := o.(*swarmv1.SwarmNodeMaintenance)
			var nodes []string
			for _, n := range m.Status.Nodes {
				nodes = append(nodes, n.Name)
			}
			next := ""
			if m.Status.NextWindow != nil {
				next = m.Status.NextWindow.Start.UTC().Format(time.RFC3339)
			}
			row(w, ns, m.Namespace, m.Name, m.Spec.ClusterRef.Name, strings.Join(nodes, ","), m.Status.Phase, next, age(m.CreationTimestamp, now))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if kind == "SwarmStack" && name != "" {
		return printServices(e.out, items[0].(*swarmv1.SwarmStack))
	}
	if kind == "SwarmStackSet" && name != "" {
		return printSet(e.out, items[0].(*swarmv1.SwarmStackSet), now)
	}
	return nil
}

// printServices is the per-service table of one stack, as Swarm last reported it. An
// ordered release (updateOrder DependsOn) adds each service's wave and where it stands,
// in wave order; a waiting service's message says what it waits for.
func printServices(out io.Writer, s *swarmv1.SwarmStack) error {
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	svcs := slices.Clone(s.Status.Services)
	ordered := slices.ContainsFunc(svcs, func(svc swarmv1.ServiceStatus) bool { return svc.Wave != nil })
	if !ordered {
		fmt.Fprintln(w, "SERVICE\tMODE\tIMAGE\tTASKS\tUPDATE STATE\tMESSAGE")
		for _, svc := range svcs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", svc.Name, svc.Mode, svc.Image, svc.RunningTasks, svc.DesiredTasks, orDash(svc.UpdateState), svc.UpdateMessage)
		}
		return w.Flush()
	}
	wave := func(svc swarmv1.ServiceStatus) int32 {
		if svc.Wave == nil {
			return -1
		}
		return *svc.Wave
	}
	slices.SortStableFunc(svcs, func(a, b swarmv1.ServiceStatus) int { return int(wave(a) - wave(b)) })
	fmt.Fprintln(w, "WAVE\tSERVICE\tMODE\tIMAGE\tTASKS\tUPDATE STATE\tRELEASE\tMESSAGE")
	for _, svc := range svcs {
		n, msg := "-", svc.UpdateMessage
		if svc.Wave != nil {
			n = fmt.Sprint(*svc.Wave)
		}
		if svc.Release == swarmv1.ReleaseWaiting {
			msg = "waits for " + svc.WaitingFor
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", n, svc.Name, svc.Mode, svc.Image, svc.RunningTasks, svc.DesiredTasks, orDash(svc.UpdateState), orDash(svc.Release), msg)
	}
	return w.Flush()
}

func header(w io.Writer, ns bool, cols ...string) {
	if ns {
		cols = append([]string{"NAMESPACE"}, cols...)
	}
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

func row(w io.Writer, ns bool, namespace string, cols ...string) {
	if ns {
		cols = append([]string{namespace}, cols...)
	}
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

func readyOf(conds []metav1.Condition) (status, msg string) {
	c := meta.FindStatusCondition(conds, swarmv1.ConditionReady)
	if c == nil {
		return "Unknown", ""
	}
	return string(c.Status), c.Message
}

func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// setKinds fills in apiVersion and kind, which typed reads leave empty, and drops the
// managed fields, so -o yaml prints what kubectl get -o yaml prints.
func setKinds(kind string, items []client.Object) {
	for _, o := range items {
		o.GetObjectKind().SetGroupVersionKind(swarmv1.GroupVersion.WithKind(kind))
		o.SetManagedFields(nil)
	}
}

func printStructured(out io.Writer, v any, format string) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "json" {
		_, err = fmt.Fprintf(out, "%s\n", raw)
		return err
	}
	y, err := yaml.JSONToYAML(raw)
	if err != nil {
		return err
	}
	_, err = out.Write(y)
	return err
}
