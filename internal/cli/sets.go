package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// printSet is one set's steps, clusters and release history.
func printSet(out io.Writer, s *swarmv1.SwarmStackSet, now time.Time) error {
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "STEP\tPHASE\tUPDATED\tAPPROVED")
	for _, st := range s.Status.Steps {
		approved := "-"
		if st.Approved {
			approved = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\n", st.Name, st.Phase, st.Updated, st.Clusters, approved)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CLUSTER\tSTACK\tSTEP\tREVISION\tOUTCOME\tREADY\tMESSAGE")
	for _, c := range s.Status.Clusters {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%t\t%s\n", c.Name, c.Stack, orDash(c.Step), orDash(shortRevision(c.Revision)), orDash(c.Outcome), c.Ready, c.Message)
	}
	for _, name := range s.Status.Unmatched {
		fmt.Fprintf(w, "%s\t-\t-\t-\tUnmatched\tfalse\tno step selects this cluster\n", name)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "REVISION\tVERSION\tSTARTED\tOUTCOME\tMESSAGE")
	for _, h := range s.Status.History {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", shortRevision(h.Revision), orDash(h.Version), ageOf(h.StartedAt.Time, now), h.Outcome, h.Message)
	}
	return w.Flush()
}

// approveCommand releases a Manual step of a set's current release: the approve
// annotation gets "<step>@<revision>", a new value for each release, confirmed when the
// operator recorded it as handled.
func (e *env) approveCommand(g *globalFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "approve SET STEP",
		Short: "Release a step with approval Manual of a SwarmStackSet's current release, and confirm",
		Args:  cobra.ExactArgs(2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return e.completeNames(g, "SwarmStackSet"), cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			set, step := &swarmv1.SwarmStackSet{}, args[1]
			if err := e.c.Get(ctx, e.key(args[0]), set); err != nil {
				return withCode(ExitError, fmt.Errorf("SwarmStackSet %s/%s: %w", e.namespace, args[0], err))
			}
			if !slices.ContainsFunc(set.Spec.Strategy.Steps, func(s swarmv1.StackSetStep) bool { return s.Name == step }) {
				return withCode(ExitError, fmt.Errorf("SwarmStackSet %s/%s has no step %q", set.Namespace, set.Name, step))
			}
			if set.Status.Revision == "" {
				return withCode(ExitError, fmt.Errorf("SwarmStackSet %s/%s has no release yet", set.Namespace, set.Name))
			}
			value := step + "@" + shortRevision(set.Status.Revision)
			if err := e.annotateObject(ctx, set, "SwarmStackSet", swarmv1.AnnotationApprove, value); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "Step %s of %s/%s (revision %s) approved\n", step, set.Namespace, set.Name, shortRevision(set.Status.Revision))
			for {
				if err := e.c.Get(ctx, e.key(set.Name), set); err != nil {
					return withCode(ExitError, err)
				}
				if set.Status.LastHandledApprove == value {
					fmt.Fprintln(e.out, "Approval handled by the operator")
					return nil
				}
				select {
				case <-ctx.Done():
					if errors.Is(ctx.Err(), context.DeadlineExceeded) {
						return withCode(ExitTimeout, fmt.Errorf("the operator did not handle the approval within %s", timeout))
					}
					return withCode(ExitError, ctx.Err())
				case <-time.After(e.opts.Poll):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the operator to confirm (exit code 3)")
	return cmd
}

// annotateObject sets one annotation with a merge patch, as annotate does for stacks.
func (e *env) annotateObject(ctx context.Context, o client.Object, kind, key, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
	if err := e.c.Patch(ctx, o, client.RawPatch(mergePatch, []byte(patch))); err != nil {
		return withCode(ExitError, fmt.Errorf("annotating %s %s/%s: %w", kind, o.GetNamespace(), o.GetName(), err))
	}
	return nil
}
