package swarmstack

// Writing over a service that exists, as docker stack deploy (or an older operator) left
// it. Swarm replaces every task of a service when its task template or endpoint differs
// by a single byte: a list in another order, or the same path spelled another way. So the
// spec written keeps the running spec's order and spelling wherever they mean the same
// thing, and only a real change restarts tasks. The spec-hash label stays the rendered
// spec's hash, so the next pass sees no change.

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/stack"
)

// recordAdoption is a revision gate that never holds: when spec.adopt takes over services
// the operator did not write (and the compose files name), it records what was running as an Adopted history entry
// (its revision is a keyed digest of those services' specs) and says in an Adopted event
// which services will roll once because they use secrets, whose data Swarm cannot give
// back to compare. Every other service is rewritten with the same task template.
func recordAdoption(_ context.Context, sc *stackScope) (string, string, time.Duration, error) {
	if !sc.s.Spec.Adopt {
		return "", "", 0, nil
	}
	foreign := stack.ServicesToAdopt(sc.rendered, sc.current)
	if len(foreign) == 0 {
		return "", "", 0, nil
	}
	revision := stack.AdoptedRevision(foreign, sc.r.NamingKey)
	st := &sc.s.Status
	// Recorded once: an earlier pass whose writes were refused, or done in part (fewer
	// foreign services now, another digest), left its entry on top.
	if len(st.History) > 0 && st.History[0].Outcome == swarmv1.OutcomeAdopted {
		return "", "", 0, nil
	}
	for _, h := range st.History {
		if h.Outcome == swarmv1.OutcomeAdopted && h.Revision == revision {
			return "", "", 0, nil
		}
	}
	names := make([]string, 0, len(foreign))
	started := foreign[0].UpdatedAt
	for _, svc := range foreign {
		names = append(names, svc.Spec.Name)
		if svc.UpdatedAt.Before(started) {
			started = svc.UpdatedAt
		}
	}
	rolling := stack.ServicesRollingForSecrets(sc.rendered, foreign)
	msg := "Adopted services deployed outside the operator: " + strings.Join(names, ", ")
	if len(rolling) > 0 {
		msg += fmt.Sprintf("; %s will roll once: they use secrets, which the operator recreates under its own names (Swarm cannot read a secret back to compare)", strings.Join(rolling, ", "))
	} else {
		msg += "; no task is restarted"
	}
	now := metav1.NewTime(sc.now)
	st.History = stack.PushHistory(st.History, swarmv1.HistoryEntry{
		Revision: revision, StartedAt: metav1.NewTime(started), FinishedAt: &now, Outcome: swarmv1.OutcomeAdopted, Message: msg,
	})
	sc.event(corev1.EventTypeNormal, swarmv1.EventAdopted, "%s", msg)
	sc.log.Info("Adopting stack", "services", names, "rollingForSecrets", rolling)
	return "", "", 0, nil
}
