package swarmnodemaintenance

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/window"
)

// This file turns what a maintenance pass found into the resource's status: the phase,
// the Ready, Stalled, Blocked and InWindow conditions, the events that announce changes,
// and when to look again.

// stall reports input only the user can fix. It blocks only taking new nodes: the pass
// has already restored held nodes whose window is over or that left the selection, and
// keeps the others until their window ends.
func stall(m *swarmv1.SwarmNodeMaintenance, reason, msg string) {
	st := &m.Status
	if held := heldNodes(st.Nodes); len(held) > 0 {
		msg += fmt.Sprintf("; no new node is taken until the spec is fixed, and %s stay in maintenance until their window ends", strings.Join(held, ", "))
	}
	st.Phase = swarmv1.PhaseFailed
	// No new node is taken, so none waits for rollouts: the wait starts anew once fixed.
	st.WaitingOn, st.WaitingSince = nil, nil
	meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionBlocked)
	reconcile.MarkFailed(&st.Conditions, m.Generation, reason, msg, true)
}

func setWindowCondition(m *swarmv1.SwarmNodeMaintenance, w window.Position) {
	st := &m.Status
	switch {
	case w.Current != nil && w.Current.OpenEnded():
		reconcile.SetCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionTrue, swarmv1.ReasonWindowOpen,
			"No window is set: in maintenance from creation until deletion")
	case w.Current != nil:
		reconcile.SetCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionTrue, swarmv1.ReasonWindowOpen,
			fmt.Sprintf("Window open from %s until %s", window.Stamp(w.Current.Start), window.Stamp(w.Current.End)))
	case w.Next != nil:
		reconcile.SetCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionFalse, swarmv1.ReasonWindowClosed,
			fmt.Sprintf("Next window from %s until %s", window.Stamp(w.Next.Start), window.Stamp(w.Next.End)))
	case w.Skipped:
		reconcile.SetCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionFalse, swarmv1.ReasonWindowClosed,
			fmt.Sprintf("The window starting at %s falls inside window.exclude: it does not happen", window.Stamp(m.Spec.Window.Start.Time)))
	default:
		reconcile.SetCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionFalse, swarmv1.ReasonWindowClosed,
			"The window is over")
	}
}

func windowTimes(s *window.Span) *swarmv1.WindowTimes {
	if s == nil {
		return nil
	}
	wt := &swarmv1.WindowTimes{Start: metav1.NewTime(s.Start)}
	if !s.OpenEnded() {
		end := metav1.NewTime(s.End)
		wt.End = &end
	}
	return wt
}

// recordTransition announces phase changes (node-level steps are announced as they
// happen).
func (r *Reconciler) recordTransition(before *swarmv1.SwarmNodeMaintenanceStatus, m *swarmv1.SwarmNodeMaintenance) {
	st := &m.Status
	if w := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionInWindow); w != nil {
		wasOpen := meta.IsStatusConditionTrue(before.Conditions, swarmv1.ConditionInWindow)
		switch {
		case w.Status == metav1.ConditionTrue && !wasOpen:
			r.Recorder.Event(m, corev1.EventTypeNormal, swarmv1.ReasonWindowOpen, withReason(m, w.Message))
		case w.Status == metav1.ConditionFalse && wasOpen:
			r.Recorder.Event(m, corev1.EventTypeNormal, swarmv1.ReasonWindowClosed, w.Message)
		}
	}
	if b := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionBlocked); b != nil {
		if old := meta.FindStatusCondition(before.Conditions, swarmv1.ConditionBlocked); old == nil || old.Message != b.Message {
			r.Recorder.Event(m, corev1.EventTypeWarning, b.Reason, b.Message)
		}
	}
	ready := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionReady)
	if ready == nil || st.Phase == before.Phase {
		return
	}
	switch st.Phase {
	case swarmv1.PhaseFailed:
		r.Recorder.Event(m, corev1.EventTypeWarning, ready.Reason, ready.Message)
	case swarmv1.PhaseInMaintenance, swarmv1.PhaseCompleted:
		r.Recorder.Event(m, corev1.EventTypeNormal, ready.Reason, ready.Message)
	}
}

func withReason(m *swarmv1.SwarmNodeMaintenance, msg string) string {
	if m.Spec.Reason == "" {
		return msg
	}
	return msg + " (" + m.Spec.Reason + ")"
}

// conclude sets the phase and the Ready and Blocked conditions from what the pass found.
func (p *maintenancePass) conclude(w window.Position) {
	st := &p.m.Status
	gen := p.m.Generation
	if len(p.blocked) > 0 {
		msgs := make([]string, 0, len(p.blocked))
		for _, b := range p.blocked {
			msgs = append(msgs, b.message)
		}
		reconcile.SetCondition(&st.Conditions, gen, swarmv1.ConditionBlocked, metav1.ConditionTrue, p.blocked[0].reason, strings.Join(msgs, "; "))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionBlocked)
	}
	var pending, inMaintenance []string
	for i := range st.Nodes {
		e := &st.Nodes[i]
		switch {
		case e.WritePending():
			pending = append(pending, e.Name)
		case e.Held():
			inMaintenance = append(inMaintenance, e.Name)
		}
	}
	inWindow := w.Current != nil
	switch {
	case len(p.timedOut) > 0:
		st.Phase = swarmv1.PhaseFailed
		reconcile.MarkFailed(&st.Conditions, gen, swarmv1.ReasonDrainTimeout,
			fmt.Sprintf("Tasks did not leave within %s: %s", reconcile.DurationOr(p.m.Spec.DrainTimeout, defaultDrainTimeout), strings.Join(p.timedOut, "; ")), false)
	case len(p.blocked) > 0:
		st.Phase = swarmv1.PhaseBlocked
		b := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionBlocked)
		reconcile.MarkFailed(&st.Conditions, gen, b.Reason, b.Message, false)
	case !inWindow && len(inMaintenance)+len(pending) > 0:
		st.Phase = swarmv1.PhaseRestoring
		reconcile.MarkReconciling(&st.Conditions, gen, swarmv1.PhaseRestoring, "Restoring "+strings.Join(append(inMaintenance, pending...), ", "))
	case len(pending)+len(p.draining) > 0:
		st.Phase = swarmv1.PhaseDraining
		reconcile.MarkReconciling(&st.Conditions, gen, swarmv1.PhaseDraining, "Draining "+strings.Join(append(pending, p.draining...), ", "))
	case inWindow:
		st.Phase = swarmv1.PhaseInMaintenance
		reconcile.MarkReady(&st.Conditions, gen, swarmv1.ReasonNodesInMaintenance, p.inMaintenanceMessage(inMaintenance))
	case w.Next == nil:
		st.Phase = swarmv1.PhaseCompleted
		reconcile.MarkReady(&st.Conditions, gen, swarmv1.ReasonNodesRestored, "The window is over and every node is back"+p.leftNote())
	default:
		st.Phase = swarmv1.PhasePending
		reconcile.MarkReady(&st.Conditions, gen, swarmv1.ReasonWindowClosed, "Next window starts at "+window.Stamp(w.Next.Start)+p.leftNote())
	}
}

func (p *maintenancePass) inMaintenanceMessage(inMaintenance []string) string {
	msg := "No node in maintenance"
	if len(inMaintenance) > 0 {
		msg = "In maintenance: " + strings.Join(inMaintenance, ", ")
	}
	if len(p.waiting) > 0 {
		msg += "; waiting: " + strings.Join(p.waiting, ", ")
	}
	return msg + p.leftNote()
}

// leftNote names the nodes this pass let go because someone else changed them; their
// own messages keep the record afterwards.
func (p *maintenancePass) leftNote() string {
	if len(p.left) == 0 {
		return ""
	}
	return "; changed outside the operator and left as is: " + strings.Join(p.left, ", ")
}

// requeueAfter wakes the reconcile for the next step: a pending write, a drain to
// follow, a blocked node, or the window's next boundary, never later than
// maintenanceMaxWait.
func (p *maintenancePass) requeueAfter(w window.Position) time.Duration {
	d := maintenanceMaxWait
	if p.wait > 0 {
		d = min(d, p.wait)
	}
	if len(p.blocked)+len(p.waiting) > 0 {
		d = min(d, guardPoll)
	}
	var boundary time.Time
	switch {
	case w.Current != nil && !w.Current.OpenEnded():
		boundary = w.Current.End
	case w.Current == nil && w.Next != nil:
		boundary = w.Next.Start
	}
	if !boundary.IsZero() {
		// A little past the boundary, so the clock has crossed it when we look.
		d = min(d, max(boundary.Sub(p.now), 0)+50*time.Millisecond)
	}
	return d
}
