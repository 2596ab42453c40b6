// Package redact removes Secret-sourced values from what the operator says.
package redact

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// MinRedacted is the shortest Secret value that is redacted: shorter ones ("1", "yes")
// would blank out ordinary words of every message, and tell little about the Secret.
const MinRedacted = 4

const redactedMark = "[redacted]"

// Redactor removes Secret-sourced values from what the operator says: conditions,
// history, warnings, events, logs and returned errors. Compose and Docker quote values
// in their errors (an invalid port, image or mount), and a value may come from a Secret.
type Redactor struct{ values []string }

func (r *Redactor) Add(values ...string) {
	for _, v := range values {
		v = strings.TrimSpace(v)
		if len(v) < MinRedacted {
			continue
		}
		r.values = append(r.values, v)
		// The forms a value takes once quoted by %q or %+q, or JSON-encoded (which writes
		// `<`, `>` and `&` as \u003c, \u003e and \u0026, and control characters as \u00XX).
		j, _ := json.Marshal(v)
		for _, q := range []string{strconv.Quote(v), strconv.QuoteToASCII(v), string(j)} {
			if q = q[1 : len(q)-1]; q != v {
				r.values = append(r.values, q)
			}
		}
	}
	// Longest first, so a value that contains another is removed whole.
	slices.SortFunc(r.values, func(a, b string) int { return len(b) - len(a) })
	r.values = slices.Compact(r.values)
}

func (r *Redactor) Text(s string) string {
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, redactedMark)
	}
	return s
}

func (r *Redactor) Err(err error) error {
	if err == nil || len(r.values) == 0 {
		return err
	}
	if msg := r.Text(err.Error()); msg != err.Error() {
		return redactedError{msg: msg, cause: err}
	}
	return err
}

// redactedError keeps errors.Is working on the cause while printing only the redacted text.
type redactedError struct {
	msg   string
	cause error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.cause }

// status redacts every message a pass may have written into the stack's status.
func (r *Redactor) Status(st *swarmv1.SwarmStackStatus) {
	if len(r.values) == 0 {
		return
	}
	for i := range st.Conditions {
		st.Conditions[i].Message = r.Text(st.Conditions[i].Message)
	}
	for i := range st.History {
		st.History[i].Message = r.Text(st.History[i].Message)
	}
	for i := range st.Warnings {
		st.Warnings[i] = r.Text(st.Warnings[i])
	}
	for i := range st.Services {
		st.Services[i].UpdateMessage = r.Text(st.Services[i].UpdateMessage)
	}
}
