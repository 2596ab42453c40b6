package compose

import (
	"io"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
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
	err = fn()
	// compose-go warns about `version` once per file name and process, so
	// Render reports it itself, for every render.
	for _, m := range hook.msgs {
		if !strings.Contains(m, "the attribute `version` is obsolete") {
			msgs = append(msgs, m)
		}
	}
	return msgs, err
}
