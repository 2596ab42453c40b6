package compose

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v4"
)

// compose-go warns through the global logrus logger (obsolete keys, unset
// variables). Those messages belong in Stack.Warnings, not on the operator's
// stderr, so while compose-go runs the standard logger writes nowhere and
// hands its entries to a capturing hook. The logger is global, hence one
// capture at a time.
var logMu sync.Mutex

type captureHook struct{ msgs []string }

func (h *captureHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h *captureHook) Fire(e *logrus.Entry) error {
	h.msgs = append(h.msgs, e.Message)
	return nil
}

func captureLogs(fn func() error) (msgs []string, err error) {
	return captureLogsWith(func(*captureHook) error { return fn() })
}

// captureLogsWith is captureLogs for an fn that looks at the messages as they
// come (and may take some back).
func captureLogsWith(fn func(h *captureHook) error) (msgs []string, err error) {
	logMu.Lock()
	defer logMu.Unlock()
	std := logrus.StandardLogger()
	hook := &captureHook{}
	out, level := std.Out, std.GetLevel()
	hooks := std.ReplaceHooks(logrus.LevelHooks{})
	std.AddHook(hook)
	std.SetOutput(io.Discard)
	if level < logrus.WarnLevel {
		std.SetLevel(logrus.WarnLevel)
	}
	defer func() {
		std.SetLevel(level)
		std.SetOutput(out)
		std.ReplaceHooks(hooks)
	}()
	err = fn(hook)
	// compose-go warns about `version` once per file name and process, so
	// Render reports it itself, for every render.
	for _, m := range hook.msgs {
		if !strings.Contains(m, "the attribute `version` is obsolete") {
			msgs = append(msgs, m)
		}
	}
	return msgs, err
}

// unsetRe matches compose-go's warning about an unset variable, which names
// neither the file nor the line.
var unsetRe = regexp.MustCompile(`^The "([^"]+)" variable is not set\. Defaulting to a blank string\.$`)

// warnUnset returns a warning naming the file and line of each value that
// uses an unset variable without a default, as compose-go's interpolation
// would warn about it: each value with a $ is substituted again, by
// compose-go's own template code, while h counts its warnings. It runs under
// captureLogsWith and takes its own messages back from h.
func warnUnset(h *captureHook, srcs []*source, env map[string]string) (out []string, names map[string]bool) {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	names = map[string]bool{}
	for _, src := range srcs {
		for _, doc := range src.docs {
			eachValue(doc, func(n *yaml.Node) {
				if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") {
					return
				}
				before := len(h.msgs)
				_, _ = template.Substitute(n.Value, lookup) // an error is the loader's to report
				for _, m := range h.msgs[before:] {
					if sub := unsetRe.FindStringSubmatch(m); sub != nil {
						out = append(out, fmt.Sprintf("%s:%d: the %q variable is not set; it is replaced by an empty string", src.name, n.Line, sub[1]))
						names[sub[1]] = true
					}
				}
				h.msgs = h.msgs[:before]
			})
		}
	}
	return out, names
}

// eachValue calls fn for every node of the tree that is not a mapping key
// (compose-go interpolates values only), without following aliases.
func eachValue(n *yaml.Node, fn func(*yaml.Node)) {
	fn(n)
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue
		}
		eachValue(c, fn)
	}
}

// dropUnset removes compose-go's unattributed warnings about the variables
// that attributed warnings already name.
func dropUnset(msgs []string, named map[string]bool) []string {
	out := msgs[:0:0]
	for _, m := range msgs {
		if sub := unsetRe.FindStringSubmatch(m); sub == nil || !named[sub[1]] {
			out = append(out, m)
		}
	}
	return out
}
