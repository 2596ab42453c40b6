package swarmstack

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ktypes "k8s.io/apimachinery/pkg/types"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/window"
)

// Event reason of a revision let through a freeze by the override annotation.
const eventFreezeOverridden = "FreezeOverridden"

// freezePoll caps the wait for a freeze's end, so that a clock that jumps is noticed.
const freezePoll = time.Minute

// freezeRule is one freeze window and where it was read, for messages.
type freezeRule struct {
	field  string
	window swarmv1.TimeWindow
}

// holdForFreeze holds a new revision while a freeze window of the stack or of its
// SwarmCluster is open. A new value of the override-freeze annotation lets it through
// once; the value counts as used whenever this gate lets a revision through, frozen or
// not, so that an override set for one release is not saved up for the next freeze.
// This gate runs last of the gates that may hold a revision: a revision let through
// here is written in this pass.
func holdForFreeze(ctx context.Context, sc *stackScope) (string, string, time.Duration, error) {
	s, st := sc.s, &sc.s.Status
	rules, err := freezeRules(ctx, sc)
	if err != nil {
		return "", "", 0, err
	}
	until, field, err := frozenUntil(rules, sc.now)
	if err != nil {
		sc.failed(swarmv1.ReasonInvalidFreeze, err.Error(), true)
		metrics.StackRevisionHeld.WithLabelValues(s.Namespace, s.Name, swarmv1.ReasonFrozen).Set(0)
		return "", "", 0, crreconcile.TerminalError(err)
	}
	override := s.Annotations[swarmv1.AnnotationOverrideFreeze]
	newOverride := override != "" && override != st.LastHandledOverrideFreeze
	if until.IsZero() || newOverride {
		metrics.StackRevisionHeld.WithLabelValues(s.Namespace, s.Name, swarmv1.ReasonFrozen).Set(0)
		if newOverride {
			st.LastHandledOverrideFreeze = override
			if !until.IsZero() {
				sc.event(corev1.EventTypeNormal, eventFreezeOverridden, "Revision %s applied during the freeze of %s (until %s): annotation %s=%s",
					stack.ShortRev(sc.rendered.Revision), field, window.Stamp(until), swarmv1.AnnotationOverrideFreeze, override)
			}
		}
		return "", "", 0, nil
	}
	metrics.StackRevisionHeld.WithLabelValues(s.Namespace, s.Name, swarmv1.ReasonFrozen).Set(1)
	msg := fmt.Sprintf("Frozen until %s by %s: revision %s waits; set a new value of annotation %s to apply it now",
		window.Stamp(until), field, stack.ShortRev(sc.rendered.Revision), swarmv1.AnnotationOverrideFreeze)
	// A little past the end, so the clock has crossed it when we look.
	return swarmv1.ReasonFrozen, msg, min(until.Sub(sc.now)+50*time.Millisecond, freezePoll), nil
}

// freezeRules are the stack's freeze windows and its cluster's.
func freezeRules(ctx context.Context, sc *stackScope) ([]freezeRule, error) {
	var rules []freezeRule
	for i, w := range sc.s.Spec.Freeze {
		rules = append(rules, freezeRule{field: fmt.Sprintf("spec.freeze[%d]", i), window: w})
	}
	var cluster swarmv1.SwarmCluster
	name := sc.s.Spec.ClusterRef.Name
	if err := sc.r.Get(ctx, ktypes.NamespacedName{Namespace: sc.s.Namespace, Name: name}, &cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return rules, nil // connect found it a moment ago; the next pass says it is gone
		}
		return nil, err
	}
	for i, w := range cluster.Spec.Freeze {
		rules = append(rules, freezeRule{field: fmt.Sprintf("SwarmCluster %s spec.freeze[%d]", name, i), window: w})
	}
	return rules, nil
}

// frozenUntil is the end of the freeze that now is in (zero if none), following windows
// that overlap or touch one another, and the field of the window that ends last.
func frozenUntil(rules []freezeRule, now time.Time) (time.Time, string, error) {
	var until time.Time
	var field string
	var errs []error
	t := now
	// Each round moves t to the end of the windows open at t; windows that chain end it.
	for round := 0; round <= len(rules); round++ {
		moved := false
		for _, r := range rules {
			w, err := window.At(r.window, nil, t)
			if err != nil {
				if round == 0 {
					errs = append(errs, fmt.Errorf("%s: %w", r.field, err))
				}
				continue
			}
			if c := w.Current; c != nil && c.End.After(until) {
				until, field, moved = c.End, r.field, true
			}
		}
		if err := errors.Join(errs...); err != nil {
			return time.Time{}, "", err
		}
		if !moved {
			break
		}
		t = until
	}
	return until, field, nil
}
