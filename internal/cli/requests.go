package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

const mergePatch = ktypes.MergePatchType

func (e *env) reconcileCommand(g *globalFlags) *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile STACK [--wait [--timeout D]]",
		Short: "Ask the operator to reconcile the stack now; with --wait follow the rollout to its end",
		Long: `Sets the annotation swarm.swarmops.io/reconcile-requested-at and waits until the operator
handled it. With --wait it then follows the rollout and exits with its outcome:
0 Completed, 1 RolledBack, Paused, DeadlineExceeded, a compose error or another reason the
stack is Stalled, 2 an error of the command, 3 the timeout passed first.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.stackNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			s, err := e.stack(ctx, args[0])
			if err != nil {
				return err
			}
			if s.Spec.Suspend {
				return withCode(ExitError, fmt.Errorf("SwarmStack %s/%s is suspended: nothing would be applied (kubectl swarm resume %s)", s.Namespace, s.Name, s.Name))
			}
			value := e.opts.Now().UTC().Format(time.RFC3339Nano)
			requested := e.opts.Now()
			if err := e.annotate(ctx, s, swarmv1.AnnotationReconcileRequestedAt, value); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "Reconcile of %s/%s requested\n", s.Namespace, s.Name)
			handled := func(s *swarmv1.SwarmStack) bool {
				return s.Status.LastHandledReconcileAt == value && s.Status.ObservedGeneration == s.Generation
			}
			if !wait {
				err := e.waitFor(ctx, s.Name, timeout, func(s *swarmv1.SwarmStack) (bool, error) {
					if handled(s) {
						fmt.Fprintf(e.out, "Reconcile handled: %s\n", readyLine(s))
						return true, nil
					}
					return false, nil
				})
				return err
			}
			return e.follow(ctx, s.Name, timeout, requested, handled)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the rollout until it completed, rolled back, paused or exceeded its deadline")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (exit code 3)")
	return cmd
}

// follow waits for the request to be handled and the rollout it started to end, printing
// progress, and turns the outcome into the exit code.
func (e *env) follow(ctx context.Context, name string, timeout time.Duration, requested time.Time, handled func(*swarmv1.SwarmStack) bool) error {
	p := &progress{}
	err := e.waitFor(ctx, name, timeout, func(s *swarmv1.SwarmStack) (bool, error) {
		conds := s.Status.Conditions
		stalled := meta.FindStatusCondition(conds, swarmv1.ConditionStalled)
		if !handled(s) {
			// A compose error stops the operator's pass before it notes the request.
			if stalled != nil && stalled.Status == metav1.ConditionTrue && stalled.ObservedGeneration == s.Generation &&
				e.opts.Now().Sub(requested) >= e.opts.StalledSettle {
				return true, failed("SwarmStack %s/%s is stalled (%s): %s", s.Namespace, s.Name, stalled.Reason, stalled.Message)
			}
			return false, nil
		}
		p.print(e, s)
		ready := meta.FindStatusCondition(conds, swarmv1.ConditionReady)
		reconciling := meta.FindStatusCondition(conds, swarmv1.ConditionReconciling)
		switch {
		case reconciling != nil && reconciling.Status == metav1.ConditionTrue:
			return false, nil
		case ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == s.Generation:
			fmt.Fprintf(e.out, "Completed: %s\n", ready.Message)
			return true, nil
		case stalled != nil && stalled.Status == metav1.ConditionTrue:
			return true, failed("%s: %s", stalled.Reason, stalled.Message)
		}
		// Not ready and not stalled: the operator retries (a cluster not ready, a
		// refused write); wait for it.
		return false, nil
	})
	return err
}

// progress prints what changed since the last look: the Ready message and each service's
// tasks and update state.
type progress struct {
	last map[string]string
}

func (p *progress) print(e *env, s *swarmv1.SwarmStack) {
	if p.last == nil {
		p.last = map[string]string{}
	}
	if line := readyLine(s); p.last[""] != line {
		p.last[""] = line
		fmt.Fprintf(e.out, "%s  %s\n", e.opts.Now().UTC().Format(time.TimeOnly), line)
	}
	for _, svc := range s.Status.Services {
		line := fmt.Sprintf("%s %d/%d tasks, %s", svc.Image, svc.RunningTasks, svc.DesiredTasks, orDash(svc.UpdateState))
		if svc.UpdateMessage != "" {
			line += ": " + svc.UpdateMessage
		}
		if p.last[svc.Name] != line {
			p.last[svc.Name] = line
			fmt.Fprintf(e.out, "%s    %s  %s\n", e.opts.Now().UTC().Format(time.TimeOnly), svc.Name, line)
		}
	}
}

func readyLine(s *swarmv1.SwarmStack) string {
	c := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReady)
	if c == nil {
		return "Ready=Unknown"
	}
	return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
}

// waitFor re-reads the stack until done says so, the context ends or the timeout passes.
func (e *env) waitFor(ctx context.Context, name string, timeout time.Duration, done func(*swarmv1.SwarmStack) (bool, error)) error {
	var last *swarmv1.SwarmStack
	for {
		s, err := e.stack(ctx, name)
		switch {
		case err == nil:
			last = s
			ok, err := done(s)
			if ok || err != nil {
				return err
			}
		case ctx.Err() == nil:
			return err
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("timed out after %s", timeout)
			if last != nil {
				msg += "; " + readyLine(last)
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return withCode(ExitTimeout, errors.New(msg))
			}
			return withCode(ExitError, ctx.Err())
		case <-time.After(e.opts.Poll):
		}
	}
}

// annotate sets one annotation with a merge patch: nothing else of the object is sent,
// so a concurrent edit of the spec is not overwritten.
func (e *env) annotate(ctx context.Context, s *swarmv1.SwarmStack, key, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
	if err := e.c.Patch(ctx, s, client.RawPatch(mergePatch, []byte(patch))); err != nil {
		return withCode(ExitError, fmt.Errorf("annotating SwarmStack %s/%s: %w", s.Namespace, s.Name, err))
	}
	return nil
}

func (e *env) suspendCommand(g *globalFlags, suspend bool) *cobra.Command {
	verb, short := "resume", "Let the operator write to the stack's Swarm again (spec.suspend=false), and confirm"
	if suspend {
		verb, short = "suspend", "Stop every write of the operator to the stack's Swarm (spec.suspend=true), and confirm"
	}
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:               verb + " STACK",
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.stackNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			s, err := e.stack(ctx, args[0])
			if err != nil {
				return err
			}
			if s.Spec.Suspend == suspend {
				fmt.Fprintf(e.out, "SwarmStack %s/%s is already %sed\n", s.Namespace, s.Name, strings.TrimSuffix(verb, "e"))
				return nil
			}
			patch := fmt.Sprintf(`{"spec":{"suspend":%t}}`, suspend)
			if err := e.c.Patch(ctx, s, client.RawPatch(mergePatch, []byte(patch))); err != nil {
				return withCode(ExitError, fmt.Errorf("patching SwarmStack %s/%s: %w", s.Namespace, s.Name, err))
			}
			gen := s.Generation
			// Confirmed once the operator finished a pass of the new generation.
			err = e.waitFor(ctx, s.Name, timeout, func(s *swarmv1.SwarmStack) (bool, error) {
				return s.Status.ObservedGeneration >= gen, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "SwarmStack %s/%s %sed\n", s.Namespace, s.Name, strings.TrimSuffix(verb, "e"))
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the operator to confirm (exit code 3)")
	return cmd
}

// annotateCommand is rollback or retry: a new value of the annotation, confirmed when the
// operator recorded it as handled.
func (e *env) annotateCommand(g *globalFlags, verb, annotation string) *cobra.Command {
	short := map[string]string{
		"rollback": "Roll every service of the stack back to its previous spec, and confirm",
		"retry":    "Apply again a revision that rolled back, paused or exceeded its deadline, and confirm",
	}[verb]
	var timeout time.Duration
	var wait bool
	cmd := &cobra.Command{
		Use:               verb + " STACK",
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.stackNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			s, err := e.stack(ctx, args[0])
			if err != nil {
				return err
			}
			if s.Spec.Suspend {
				return withCode(ExitError, fmt.Errorf("SwarmStack %s/%s is suspended: the operator would not act (kubectl swarm resume %s)", s.Namespace, s.Name, s.Name))
			}
			value := e.opts.Now().UTC().Format(time.RFC3339Nano)
			requested := e.opts.Now()
			if err := e.annotate(ctx, s, annotation, value); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "%s of %s/%s requested\n", titleCase(verb), s.Namespace, s.Name)
			handled := func(s *swarmv1.SwarmStack) bool {
				v := s.Status.LastHandledRetry
				if annotation == swarmv1.AnnotationRollback {
					v = s.Status.LastHandledRollback
				}
				return v == value
			}
			if wait {
				return e.follow(ctx, s.Name, timeout, requested, handled)
			}
			err = e.waitFor(ctx, s.Name, timeout, func(s *swarmv1.SwarmStack) (bool, error) {
				return handled(s), nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "%s handled by the operator\n", titleCase(verb))
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait (exit code 3)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the rollout it starts, with reconcile --wait's exit codes")
	return cmd
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
