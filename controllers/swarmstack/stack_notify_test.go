package swarmstack

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	fluxevents "github.com/fluxcd/pkg/runtime/events"
	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/testkit"
)

// notificationReceiver is notification-controller's events endpoint as far as the
// operator sees it: it decodes each POST as Flux's eventv1.Event.
type notificationReceiver struct {
	mu     sync.Mutex
	events []eventv1.Event
	bodies []string
}

// receiveNotifications starts a receiver and makes the env's reconcilers post to it
// through Flux's events recorder, as --events-addr does.
func receiveNotifications(t *testing.T, e *sourceEnv) *notificationReceiver {
	rcv := &notificationReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev eventv1.Event
		var raw json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || json.Unmarshal(raw, &ev) != nil {
			t.Errorf("not a Flux event: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		rcv.events = append(rcv.events, ev)
		rcv.bodies = append(rcv.bodies, string(raw))
		rcv.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	// A logger with a sink: the recorder asks its sink whether tracing is on
	// (logr.Discard has none).
	n, err := fluxevents.NewRecorder(funcr.New(func(string, string) {}, funcr.Options{}), srv.URL, "swarm-operator", fluxevents.WithScheme(testkit.Scheme(t)))
	if err != nil {
		t.Fatal(err)
	}
	tune := e.tune
	e.tune = func(r *Reconciler) {
		tune(r)
		r.Notifier = n
	}
	return rcv
}

func (n *notificationReceiver) received() []eventv1.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]eventv1.Event(nil), n.events...)
}

// TestNotificationsOfACompletedAndARolledBackReleaseArriveOnceWithRevisionAndCommit: the
// start and outcome of each release reach notification-controller once, as Flux events
// whose metadata carry the source revision and commit that commit-status providers read.
func TestNotificationsOfACompletedAndARolledBackReleaseArriveOnceWithRevisionAndCommit(t *testing.T) {
	e := newSourceEnv(t)
	rcv := receiveNotifications(t, e)
	e.releaseFromSource()
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:2222", sourceFiles("numbers-api:v2"), nil), metav1.ConditionTrue)
	e.passes("numbers", 1)
	e.swarmRollsBack(t, "numbers_api")
	e.sw.ConvergeAll()
	e.passes("numbers", 5) // more passes: nothing is announced twice
	e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonRolledBack)

	type want struct{ reason, severity, source string }
	wants := []want{
		{swarmv1.EventRolloutStarted, eventv1.EventSeverityInfo, "main@sha1:1111"},
		{swarmv1.EventRolloutCompleted, eventv1.EventSeverityInfo, "main@sha1:1111"},
		{swarmv1.EventRolloutStarted, eventv1.EventSeverityInfo, "main@sha1:2222"},
		{swarmv1.ReasonRolledBack, eventv1.EventSeverityError, "main@sha1:2222"},
	}
	got := rcv.received()
	if len(got) != len(wants) {
		for _, ev := range got {
			t.Logf("%s %s %v: %s", ev.Reason, ev.Severity, ev.Metadata, ev.Message)
		}
		t.Fatalf("%d notifications, want %d", len(got), len(wants))
	}
	stack := e.stack("numbers")
	for i, w := range wants {
		ev := got[i]
		commit := w.source[len("main@sha1:"):]
		if ev.Reason != w.reason || ev.Severity != w.severity || ev.Metadata[metaRevision] != w.source || ev.Metadata[metaCommit] != commit {
			t.Errorf("notification %d: %s %s %v, want %s %s revision %s commit %s", i, ev.Reason, ev.Severity, ev.Metadata, w.reason, w.severity, w.source, commit)
		}
		if ev.InvolvedObject.Kind != "SwarmStack" || ev.InvolvedObject.Name != "numbers" || ev.InvolvedObject.Namespace != stackNS ||
			ev.InvolvedObject.APIVersion != swarmv1.GroupVersion.String() || ev.ReportingController != "swarm-operator" {
			t.Errorf("notification %d is about %+v from %s", i, ev.InvolvedObject, ev.ReportingController)
		}
		if ev.Metadata[metaCommitStatus] != eventv1.MetaCommitStatusUpdateValue || ev.Metadata[metaStackRevision] == "" {
			t.Errorf("notification %d: metadata %v", i, ev.Metadata)
		}
	}
	if rev := got[3].Metadata[metaStackRevision]; rev != stack.Status.History[0].Revision {
		t.Errorf("the rolled-back notification names stack revision %s, history %s", rev, stack.Status.History[0].Revision)
	}
}

// TestNotificationIsSentOnceWhenTheStatusPatchConflicts: the pass that wrote a revision
// loses its status patch to a conflict and runs again; the start is announced once, for
// the status that was stored.
func TestNotificationIsSentOnceWhenTheStatusPatchConflicts(t *testing.T) {
	e := newSourceEnv(t)
	rcv := receiveNotifications(t, e)
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", sourceFiles("numbers-api:v1"), nil), metav1.ConditionTrue)
	e.sourceStack("numbers")
	e.conflictStatusPatches = 1 // the first pass's: it writes the revision
	e.passes("numbers", 3)
	if e.image("numbers_api") != "numbers-api:v1" || e.conflictStatusPatches != 0 {
		t.Fatalf("the pass did not write, or no patch conflicted: image %q", e.image("numbers_api"))
	}
	var starts int
	for _, ev := range rcv.received() {
		if ev.Reason == swarmv1.EventRolloutStarted {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("%d RolloutStarted notifications, want 1", starts)
	}
}
