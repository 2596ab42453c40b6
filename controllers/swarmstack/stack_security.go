package swarmstack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/security"
)

// securityModes reads the levels in force for the stack: its namespace's labels, the
// operator's default and its SwarmCluster's spec.securityLevel (internal/security).
func (r *Reconciler) securityModes(ctx context.Context, s *swarmv1.SwarmStack) (security.Modes, error) {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := r.Get(ctx, ktypes.NamespacedName{Name: s.Namespace}, ns); err != nil && !apierrors.IsNotFound(err) {
		return security.Modes{}, fmt.Errorf("reading namespace %q for its security labels: %w", s.Namespace, err)
	}
	var cluster swarmv1.SwarmCluster
	clusterLevel := ""
	if err := r.Get(ctx, ktypes.NamespacedName{Namespace: s.Namespace, Name: s.Spec.ClusterRef.Name}, &cluster); err == nil {
		clusterLevel = cluster.Spec.SecurityLevel
	} else if !apierrors.IsNotFound(err) {
		return security.Modes{}, fmt.Errorf("reading SwarmCluster %q for its security level: %w", s.Spec.ClusterRef.Name, err)
	}
	return security.Resolve(ns.Labels, r.Security.Level, clusterLevel), nil
}

// checkSecurity holds the rendered revision to the levels in force, before anything is
// written. A violation of enforce stops a revision not yet written (PolicyViolation;
// what runs keeps running); the revision already written is only reported until the
// next one, so that tightening a namespace's level never stops what runs there. It
// returns the warnings for status (warn, and enforce on the running revision) and
// whether the revision may be written.
func (sc *stackScope) checkSecurity(modes security.Modes, files []compose.File, rendered *compose.Stack) (warnings []string, ok bool) {
	s, st := sc.s, &sc.s.Status
	check := func(mode string, l security.Level) []security.Violation {
		p := sc.r.Security
		p.Level = l
		vs := security.Check(rendered, files, p)
		// One series per mode: the other levels' go. By label set, not a partial match,
		// which goes through every series of every stack (a third of the operator's CPU
		// in a deploy of 2,000 stacks).
		for _, other := range security.Levels {
			if other != l {
				metrics.StackPolicyViolations.DeleteLabelValues(s.Namespace, s.Name, mode, other.String())
			}
		}
		metrics.StackPolicyViolations.WithLabelValues(s.Namespace, s.Name, mode, l.String()).Set(float64(len(vs)))
		return vs
	}
	enforced, warned, audited := check("enforce", modes.Enforce), check("warn", modes.Warn), check("audit", modes.Audit)
	newRevision := rendered.Revision != st.LastAttemptedRevision || s.Annotations[swarmv1.AnnotationRetry] != st.LastHandledRetry
	warnings = slices.Clone(modes.Problems)
	if len(enforced) > 0 {
		msg := security.Message(modes.Enforce, enforced)
		if newRevision {
			for _, p := range modes.Problems {
				msg += "; " + p // why the level is what it is, when a label was no level
			}
			if !isReadyWithReason(st.Conditions, swarmv1.ReasonPolicyViolation, sc.redact.Text(msg)) {
				sc.event(corev1.EventTypeWarning, swarmv1.ReasonPolicyViolation, "%s", msg)
			}
			sc.input = &condFact{reason: swarmv1.ReasonPolicyViolation, msg: msg, stalled: true}
			sc.inputErr = crreconcile.TerminalError(errors.New(sc.redact.Text(msg)))
			return nil, false
		}
		warnings = append(warnings, "The running revision is left as it is, but the next one must comply: "+msg)
	}
	if len(warned) > 0 {
		warnings = append(warnings, security.Message(modes.Warn, warned))
	}
	if len(warnings) > 0 && !containsAll(st.Warnings, capWarnings(warnings)) {
		sc.event(corev1.EventTypeWarning, swarmv1.EventPolicyWarning, "%s", strings.Join(warnings, "; "))
	}
	if len(audited) > 0 && newRevision {
		sc.event(corev1.EventTypeNormal, swarmv1.EventPolicyAudit, "%s", security.Message(modes.Audit, audited))
	}
	return warnings, true
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// stacksInNamespace wakes every SwarmStack of a namespace whose security labels changed.
func (r *Reconciler) stacksInNamespace(ctx context.Context, ns client.Object) []crreconcile.Request {
	var list swarmv1.SwarmStackList
	if err := r.List(ctx, &list, client.InNamespace(ns.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	out := make([]crreconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = crreconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return out
}

// securityLabelsChanged passes namespace updates that change a security label; a new
// namespace has no stacks yet, and a deleted one takes them along.
var securityLabelsChanged = predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
	DeleteFunc: func(event.DeleteEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		for _, l := range []string{security.LabelEnforce, security.LabelWarn, security.LabelAudit} {
			if e.ObjectOld.GetLabels()[l] != e.ObjectNew.GetLabels()[l] {
				return true
			}
		}
		return false
	},
}

// policyKey names the security policy a render was checked against, for the render
// digest: a new level or allowed list must check the revision in force again (its
// warnings), so the pass may not skip that render.
func policyKey(modes security.Modes, p security.Policy) string {
	return fmt.Sprintf("%s/%s/%s %q %v %v", modes.Enforce, modes.Warn, modes.Audit, modes.Problems, p.AllowedHostPaths, p.AllowedHostPorts)
}
