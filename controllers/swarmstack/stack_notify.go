package swarmstack

// Notifications for Flux's notification-controller (--events-addr): each rollout's start
// and outcome, with the revision in Flux's metadata format so that an Alert can route it
// to chat and a Provider can post a commit status for the commit released.

import (
	"fmt"
	"strings"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/stack"
)

// Notifier sends events outside the cluster: Flux's events recorder (fluxcd/pkg/runtime/
// events), built without a Kubernetes sink since the Reconciler's Recorder writes those.
type Notifier = events.AnnotatedEventRecorder

// Metadata keys, prefixed with the API group as Flux's controllers prefix theirs: the
// notification-controller keeps the keys of the involved object's group, unprefixed.
const (
	metaGroup         = "swarm.swarmops.io/" // swarmv1.GroupVersion.Group
	metaRevision      = metaGroup + eventv1.MetaRevisionKey
	metaCommit        = metaGroup + eventv1.MetaCommitKey
	metaCommitStatus  = metaGroup + eventv1.MetaCommitStatusKey
	metaStackRevision = metaGroup + "stackRevision"
)

// notify announces the rollouts that started and finished between two stored statuses.
// It runs after the status is stored, so a pass that ran again after a conflict does not
// announce the same start or outcome twice.
func (r *Reconciler) notify(before, after *swarmv1.SwarmStack) {
	if r.Notifier == nil {
		return
	}
	was := map[string]swarmv1.HistoryEntry{}
	for _, h := range before.Status.History {
		was[historyKey(h)] = h
	}
	// Oldest first: a pass that finished one rollout and started the next says so in order.
	for i := len(after.Status.History) - 1; i >= 0; i-- {
		h := after.Status.History[i]
		if h.Outcome == swarmv1.OutcomeAdopted {
			continue // a record of what ran before the operator, no rollout
		}
		old, seen := was[historyKey(h)]
		if !seen {
			r.send(after, h, corev1.EventTypeNormal, swarmv1.EventRolloutStarted,
				fmt.Sprintf("Rolling out revision %s%s%s", stack.ShortRev(h.Revision), stack.VersionSuffix(h.Version), fromSource(h)))
		}
		if h.Outcome == swarmv1.OutcomeProgressing || seen && old.Outcome == h.Outcome {
			continue
		}
		typ, reason := corev1.EventTypeWarning, stack.OutcomeReason(h.Outcome)
		switch h.Outcome {
		case swarmv1.OutcomeCompleted:
			typ, reason = corev1.EventTypeNormal, swarmv1.EventRolloutCompleted
		case swarmv1.OutcomeSuperseded:
			typ, reason = corev1.EventTypeNormal, swarmv1.EventRolloutSuperseded
		case swarmv1.OutcomeRolledBackOnRequest:
			typ, reason = corev1.EventTypeNormal, swarmv1.ReasonRolledBackOnRequest
		}
		msg := fmt.Sprintf("Revision %s%s%s %s", stack.ShortRev(h.Revision), stack.VersionSuffix(h.Version), fromSource(h), stack.OutcomeWords(h.Outcome))
		if h.Message != "" {
			msg += ": " + h.Message
		}
		r.send(after, h, typ, reason, msg)
	}
}

func (r *Reconciler) send(s *swarmv1.SwarmStack, h swarmv1.HistoryEntry, typ, reason, msg string) {
	meta := map[string]string{metaStackRevision: h.Revision, metaRevision: h.Revision, metaCommitStatus: eventv1.MetaCommitStatusUpdateValue}
	if h.SourceRevision != "" {
		// Flux's format (main@sha1:...): what commit-status providers read the commit from.
		meta[metaRevision] = h.SourceRevision
		if _, sha, ok := strings.Cut(h.SourceRevision, "sha1:"); ok {
			meta[metaCommit] = sha
		}
	}
	r.Notifier.AnnotatedEventf(s, nil, meta, typ, reason, "Rollout", "%s", msg)
}

// historyKey tells history entries apart: a revision rolled out again is a new entry.
func historyKey(h swarmv1.HistoryEntry) string {
	return h.Revision + "@" + h.StartedAt.UTC().String()
}

func fromSource(h swarmv1.HistoryEntry) string {
	if h.SourceRevision == "" {
		return ""
	}
	return " (" + h.SourceRevision + ")"
}
