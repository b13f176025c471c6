package modinput

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// LogHandler writes one line per message to splunkd's stderr, starting with the level word
// splunkd reads (DEBUG, INFO, WARN, ERROR), then the message and key=value pairs.
type LogHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	attrs []slog.Attr
}

// NewLogHandler logs to w at level and above.
func NewLogHandler(w io.Writer, level slog.Leveler) *LogHandler {
	return &LogHandler{mu: &sync.Mutex{}, w: w, level: level}
}

func (h *LogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *LogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("ERROR ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("WARN ")
	case r.Level >= slog.LevelInfo:
		b.WriteString("INFO ")
	default:
		b.WriteString("DEBUG ")
	}
	b.WriteString(oneLine(r.Message))
	write := func(a slog.Attr) bool {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return true
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, KVValue(a.Value.String()))
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *LogHandler) WithGroup(string) slog.Handler { return h }

// KVValue writes a value the way Splunk's automatic key=value extraction reads it back
// whole: on one line, and quoted when it holds a space, a tab, a quote or an equals sign,
// with its own double quotes turned into single ones (the extraction ends a quoted value at
// the next double quote and honours no backslash escape).
func KVValue(v string) string {
	v = oneLine(v)
	if !strings.ContainsAny(v, " \t\"=") {
		return v
	}
	return `"` + strings.ReplaceAll(v, `"`, `'`) + `"`
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
