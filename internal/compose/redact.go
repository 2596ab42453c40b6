package compose

import (
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"
)

const (
	// minSecretLen is the shortest secret value (in characters) that is
	// redacted: redacting a value of one to three characters ("1", "yes")
	// would cut that text out of every message, and so short a value is no
	// secret anyway.
	minSecretLen = 4
	// redacted replaces a secret value in an error or warning.
	redacted = "[redacted]"
)

// redactor removes secret values from the errors and warnings Render
// returns: messages reach status conditions, events and logs, and compose-go
// and the conversion quote the offending value.
type redactor struct {
	forms map[string]bool // each way a value can be written, at least minSecretLen long
	list  []string        // forms, longest first
}

func newRedactor(opts Options) *redactor {
	r := &redactor{forms: map[string]bool{}}
	for _, k := range opts.SensitiveVariables {
		if v, ok := opts.Variables[k]; ok {
			r.add(v)
		}
	}
	for _, d := range opts.SecretData {
		r.add(string(d))
	}
	return r
}

// add registers a secret value: as it is, trimmed, line by line, and as
// %q, %+q and JSON would quote it.
func (r *redactor) add(v string) {
	if utf8.RuneCountInString(strings.TrimSpace(v)) < minSecretLen {
		return
	}
	variants := []string{v, strings.TrimSpace(v)}
	if strings.Contains(v, "\n") {
		for _, l := range strings.Split(v, "\n") {
			variants = append(variants, strings.TrimSpace(l))
		}
	}
	for _, s := range variants {
		j, _ := json.Marshal(s)
		for _, f := range []string{s, unquote(strconv.Quote(s)), unquote(strconv.QuoteToASCII(s)), unquote(string(j))} {
			if utf8.RuneCountInString(f) >= minSecretLen && !r.forms[f] {
				r.forms[f] = true
				r.list = append(r.list, f)
			}
		}
	}
	sort.SliceStable(r.list, func(i, j int) bool { return len(r.list[i]) > len(r.list[j]) })
}

func unquote(q string) string { return q[1 : len(q)-1] }

// addSecretEnvironment registers the variables that secrets take their data
// from (`environment:`), read from the files themselves: an error can come
// before the merged model exists.
func (r *redactor) addSecretEnvironment(srcs []*source, vars map[string]string) {
	for _, src := range srcs {
		for _, doc := range src.docs {
			if len(doc.Content) == 0 {
				continue
			}
			_, secrets := lookup(deref(doc.Content[0]), "secrets")
			keys(secrets, func(_ string, _, s *yaml.Node) {
				if _, env := lookup(s, "environment"); env != nil && env.Kind == yaml.ScalarNode {
					if v, ok := vars[env.Value]; ok {
						r.add(v)
					}
				}
			})
		}
	}
}

// quotedRe finds quoted text in a message: "..." with Go escapes, or '...'.
var quotedRe = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"|'([^']*)'`)

// string redacts every occurrence of a secret value in s, and quoted text
// that is a piece of one (a parser may quote only the part it read).
func (r *redactor) string(s string) string {
	if len(r.list) == 0 {
		return s
	}
	for _, f := range r.list {
		s = strings.ReplaceAll(s, f, redacted)
	}
	return quotedRe.ReplaceAllStringFunc(s, func(q string) string {
		inner := q[1 : len(q)-1]
		if inner == redacted || utf8.RuneCountInString(inner) < minSecretLen {
			return q
		}
		for _, f := range r.list {
			if strings.Contains(f, inner) {
				return q[:1] + redacted + q[len(q)-1:]
			}
		}
		return q
	})
}

// err redacts an error's message. An *Error keeps its file and line; another
// error whose message changes becomes a plain error, so that unwrapping
// cannot reach the original text.
func (r *redactor) err(err error) error {
	if err == nil || len(r.list) == 0 {
		return err
	}
	var e *Error
	if errors.As(err, &e) && e.Error() == err.Error() {
		out := *e
		out.Msg = r.string(e.Msg)
		return &out
	}
	if msg := r.string(err.Error()); msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

func (r *redactor) strings(in []string) []string {
	if len(r.list) == 0 || len(in) == 0 {
		return in
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = r.string(s)
	}
	return sortedUnique(out)
}
