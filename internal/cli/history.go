package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func (e *env) historyCommand(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:               "history STACK",
		Short:             "The stack's rollouts, newest first: revision, version, times, outcome and message",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.stackNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.stack(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(e.out, s.Status.History, output)
			}
			w := tabwriter.NewWriter(e.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "REVISION\tVERSION\tSTARTED\tFINISHED\tOUTCOME\tMESSAGE")
			for _, h := range s.Status.History {
				finished := "-"
				if h.FinishedAt != nil {
					finished = h.FinishedAt.UTC().Format(time.RFC3339)
				}
				msg := h.Message
				if len(h.Waves) > 0 {
					// The order an ordered release wrote its services in.
					msg = "waves " + strings.Join(h.Waves, " → ") + "; " + msg
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", shortRevision(h.Revision), orDash(h.Version),
					h.StartedAt.UTC().Format(time.RFC3339), finished, h.Outcome, msg)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "yaml or json (default: a table)")
	return cmd
}

func (e *env) eventsCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:               "events STACK",
		Short:             "The events of the stack, oldest first",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.stackNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.stack(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var list corev1.EventList
			// Filtered here rather than with a field selector, so that any API server (and
			// the tests' fake one) answers alike; events of one namespace are few.
			if err := e.c.List(cmd.Context(), &list, client.InNamespace(s.Namespace)); err != nil {
				return withCode(ExitError, fmt.Errorf("listing events: %w", err))
			}
			var evs []corev1.Event
			for _, ev := range list.Items {
				o := ev.InvolvedObject
				if o.Kind == "SwarmStack" && o.Name == s.Name && (o.UID == "" || o.UID == s.UID) {
					evs = append(evs, ev)
				}
			}
			slices.SortStableFunc(evs, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
			w := tabwriter.NewWriter(e.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "LAST SEEN\tTYPE\tREASON\tMESSAGE")
			now := e.opts.Now()
			for _, ev := range evs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ageOf(eventTime(ev), now), ev.Type, ev.Reason, ev.Message)
			}
			return w.Flush()
		},
	}
}

func eventTime(ev corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp.Time
	}
	return ev.CreationTimestamp.Time
}

func ageOf(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return age(metav1.NewTime(t), now)
}

// shortRevision is the revision as the operator's messages print it.
func shortRevision(rev string) string {
	const prefix = "sha256:"
	if len(rev) > len(prefix)+12 && rev[:len(prefix)] == prefix {
		return rev[len(prefix) : len(prefix)+12]
	}
	return rev
}
