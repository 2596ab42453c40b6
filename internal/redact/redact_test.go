package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

func TestRedactorLeavesValuesShorterThanFourCharactersAlone(t *testing.T) {
	var r Redactor
	r.Add("yes", "  ab  ", "", "1234")
	if got := r.Text("yes, ab: 1234"); got != "yes, ab: [redacted]" {
		t.Errorf("text = %q", got)
	}
	// Surrounding blanks are not part of the value.
	r.Add("   padded-value \n")
	if got := r.Text("x=padded-value;"); got != "x=[redacted];" {
		t.Errorf("text = %q", got)
	}
}

func TestRedactorRemovesQuotedFormsOfAValue(t *testing.T) {
	var r Redactor
	r.Add("pa\"ss\nword", "tab\there")
	msg := fmt.Sprintf("invalid port %q and %q; json {\"v\":\"pa\\\"ss\\nword\"}", "pa\"ss\nword", "tab\there")
	got := r.Text(msg)
	if strings.Contains(got, "pa") || strings.Contains(got, "ss") || strings.Contains(got, "tab") {
		t.Errorf("text = %q, a quoted form survived", got)
	}
	if strings.Count(got, redactedMark) != 3 {
		t.Errorf("text = %q, want three redactions", got)
	}
	// A plain value has no separate quoted form.
	var plain Redactor
	plain.Add("plainvalue")
	if len(plain.values) != 1 {
		t.Errorf("values = %q", plain.values)
	}
}

func TestRedactorRemovesTheLongestValueFirst(t *testing.T) {
	var r Redactor
	r.Add("token")
	r.Add("token-with-suffix", "token") // a duplicate is kept once
	if got := r.Text("a token-with-suffix and a token"); got != "a [redacted] and a [redacted]" {
		t.Errorf("text = %q, want each value removed whole", got)
	}
	if len(r.values) != 2 {
		t.Errorf("values = %q, want duplicates dropped", r.values)
	}
}

func TestRedactorErrKeepsErrorsIs(t *testing.T) {
	var empty Redactor
	errSourceMissing := errors.New("source not found")
	base := fmt.Errorf("%w: bad value %q", errSourceMissing, "s3cr3t-value")
	if !errors.Is(empty.Err(base), base) || empty.Err(base).Error() != base.Error() {
		t.Errorf("a Redactor without values changed the error")
	}
	var r Redactor
	r.Add("s3cr3t-value")
	if r.Err(nil) != nil { //nolint:errorlint // nil in, nil out
		t.Errorf("err(nil) != nil")
	}
	clean := errors.New("nothing to hide")
	if r.Err(clean) != clean { //nolint:errorlint // the very same error must come back
		t.Errorf("an error without the value was wrapped")
	}
	got := r.Err(base)
	if got.Error() != `source not found: bad value "[redacted]"` {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(got, errSourceMissing) || errors.Unwrap(got) != base { //nolint:errorlint // the cause itself, unwrapped once
		t.Errorf("redacted error lost its cause: %v", got)
	}
}

func TestRedactorStatusRedactsEveryMessage(t *testing.T) {
	const v = "hunter2hunter2"
	st := &swarmv1.SwarmStackStatus{
		Conditions: []metav1.Condition{{Type: swarmv1.ConditionReady, Message: "bad " + v}},
		History:    []swarmv1.HistoryEntry{{Message: "rolled back: " + v}},
		Warnings:   []string{"warning " + v},
		Services:   []swarmv1.ServiceStatus{{Name: "api", UpdateMessage: "update paused: " + v}},
	}
	var empty Redactor
	empty.Status(st)
	if st.Warnings[0] != "warning "+v {
		t.Errorf("a Redactor without values changed the status")
	}
	var r Redactor
	r.Add(v)
	r.Status(st)
	for _, msg := range []string{st.Conditions[0].Message, st.History[0].Message, st.Warnings[0], st.Services[0].UpdateMessage} {
		if strings.Contains(msg, v) || !strings.Contains(msg, redactedMark) {
			t.Errorf("message %q not redacted", msg)
		}
	}
}
