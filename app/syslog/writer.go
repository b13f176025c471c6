package syslog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"ta-defender-alerts/app/retry"
)

// Report is what became of the N messages taken since the last report, up to and including
// the one tagged Last. With Err nil every one of them is confirmed: written and flushed to
// the connection, or refused and listed in Rejected. With Err set none of them is, and the
// Writer forgets them (the caller sends them again if it wants them delivered).
type Report struct {
	N        int
	Last     any
	Rejected []Rejected
	// Resent counts messages written again since the last report after a connection error:
	// messages of earlier reports written in the Resend window before it, and messages of
	// this one whose bytes had been partly or wholly handed to the broken connection. The
	// receiver may hold each of them twice.
	Resent int
	Err    error
}

// Rejected is a message the Writer will not send, for the caller's dead-letter file.
type Rejected struct {
	Tag     any
	Index   int    // its place among the report's N, from 0
	Message []byte // the syslog message (header and body, unframed) as it would have been sent
	Err     error  // wraps ErrTooBig, ErrNewline or ErrHeader
}

// Stats are a Writer's totals since New.
type Stats struct {
	Written    int64 // messages written and flushed (re-sends not counted)
	Resent     int64 // messages written again after a connection error
	Rejected   int64
	Shortened  int64 // messages Shorten made fit
	Connects   int64 // connections made
	Failures   int64 // failed attempts to connect or re-send
	RoomWaits  int64 // times writing waited for the re-send buffer to have room
	KeptBytes  int64 // bytes held for re-sending now
	KeptOldest time.Time
}

// Writer sends syslog messages over one connection, reconnecting as needed. It is safe for
// concurrent use; report is called with the Writer's lock held, in order, from Write, Flush,
// Close or the Writer's own timer, and must not call the Writer.
type Writer struct {
	o      Options
	t      target
	h      header
	stream bool
	report func(Report)

	sem    chan struct{} // the lock: a channel so that waiting for it ends with a context
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer // flushes after Linger, retries after a backoff, recovers after a break

	// Guarded by sem.
	closed  bool
	conn    connection
	buf     []byte    // the framed bytes of the messages taken since the last report
	pend    []pending // those messages
	partial int       // how many of pend had bytes handed to a connection that broke
	resent  int       // re-sent since the last report
	kept    []kept    // written messages young enough to be re-sent, oldest first
	keptN   int       // their bytes
	cutoff  time.Time // when the first unrecovered connection error happened (zero: none)
	bo      *backoff.ExponentialBackOff
	next    time.Time // no connection attempt before
	flushAt int
	scratch []byte

	stats struct {
		written, resent, rejected, shortened, connects, failures, roomWaits, keptN atomic.Int64
		oldest                                                                     atomic.Int64
	}
}

type pending struct {
	end int // offset in buf after this message
	tag any
	rej *Rejected
}

type kept struct {
	at time.Time
	b  []byte // framed
}

// New makes a Writer from o (checked: an error names the field). It connects when it first
// has something to send. report hears what became of every message Write takes.
func New(o Options, report func(Report)) (*Writer, error) {
	t, err := o.resolve()
	if err != nil {
		return nil, err
	}
	w := &Writer{o: o, t: t, stream: t.network == "tcp", report: report, sem: make(chan struct{}, 1)}
	w.h = newHeader(&w.o, strconv.Itoa(os.Getpid()))
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.bo = retry.NewBackoff(o.BackoffMin, o.BackoffMax)
	w.flushAt = min(flushBytes, o.Keep/2)
	w.timer = time.AfterFunc(time.Hour, w.background)
	w.timer.Stop()
	return w, nil
}

func (w *Writer) lock(ctx context.Context) error {
	select {
	case w.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) unlock() { <-w.sem }

// Write takes m; it blocks while the messages taken before it cannot be flushed (connecting,
// re-sending, waiting for room to keep them). Its error (the context's, or ErrClosed) means m
// was not taken and will not be reported. A message over MaxSize, holding a line feed under
// LF framing, or with an invalid MsgID or Time is taken and reported Rejected.
func (w *Writer) Write(ctx context.Context, m Message) error {
	if err := w.lock(ctx); err != nil {
		return err
	}
	defer w.unlock()
	if w.closed {
		return ErrClosed
	}
	if len(w.buf) >= w.flushAt {
		if err := w.flush(ctx, true); err != nil {
			return err
		}
	}
	w.take(&m)
	if len(w.pend) == 1 {
		w.timer.Reset(w.o.Linger)
	}
	return nil
}

// take frames m into buf, or records it rejected.
func (w *Writer) take(m *Message) {
	p := pending{tag: m.Tag}
	reject := func(msg []byte, err error) {
		w.stats.rejected.Add(1)
		p.rej = &Rejected{Tag: m.Tag, Index: len(w.pend), Message: append([]byte(nil), msg...), Err: err}
	}
	if err := checkMessage(m); err != nil {
		reject(m.Body, err)
	} else {
		w.scratch = w.h.appendMessage(w.scratch[:0], m)
		if len(w.scratch) > w.o.MaxSize && w.o.Shorten != nil {
			room := w.o.MaxSize - w.h.headLen(m)
			if body, ok := w.o.Shorten(*m, room); ok && len(body) <= room {
				short := *m
				short.Body = body
				w.scratch = w.h.appendMessage(w.scratch[:0], &short)
				w.stats.shortened.Add(1)
			}
		}
		switch {
		case len(w.scratch) > w.o.MaxSize:
			reject(w.scratch, fmt.Errorf("%w: %d bytes, MaxSize %d", ErrTooBig, len(w.scratch), w.o.MaxSize))
		case w.stream && w.o.Framing == LF && containsLF(w.scratch):
			reject(w.scratch, ErrNewline)
		default:
			w.buf = appendFrame(w.buf, w.scratch, w.o.Framing, w.stream)
		}
	}
	p.end = len(w.buf)
	w.pend = append(w.pend, p)
}

func containsLF(b []byte) bool {
	for _, c := range b {
		if c == '\n' {
			return true
		}
	}
	return false
}

// Flush writes what was taken and reports it; it blocks until that is done or ctx ends, in
// which case those messages are reported failed and forgotten.
func (w *Writer) Flush(ctx context.Context) error {
	if err := w.lock(ctx); err != nil {
		return err
	}
	defer w.unlock()
	if w.closed {
		return ErrClosed
	}
	return w.flush(ctx, true)
}

// Close flushes (as Flush) and closes the connection; later calls return ErrClosed. On TCP
// and TLS it then waits, up to Timeout or until ctx ends, for the receiver to close its side
// after reading everything; a reset instead is a break (reconnect, re-send, close again).
// Only a receiver that fails after that, or never closes, can still lose what it read.
func (w *Writer) Close(ctx context.Context) error {
	if err := w.lock(ctx); err != nil {
		return err
	}
	defer w.unlock()
	if w.closed {
		return ErrClosed
	}
	err := w.flush(ctx, true)
	if err == nil && w.stream {
		err = w.shutdown(ctx)
	}
	w.closed = true
	w.cancel()
	w.timer.Stop()
	if w.conn.c != nil {
		w.conn.c.Close()
		w.conn = connection{}
	}
	return err
}

// background flushes for the timer: after Linger, after a backoff, after a break. It never
// waits: what it cannot do now it leaves, with the timer set for when it can.
func (w *Writer) background() {
	select {
	case w.sem <- struct{}{}:
	default: // a caller holds the lock: look again later
		w.timer.Reset(w.o.Linger)
		return
	}
	defer w.unlock()
	if !w.closed {
		w.flush(w.ctx, false)
	}
}

// errLater is flush's answer, without wait, when it would have to wait.
var errLater = errors.New("later")

// flush writes buf, recovering from broken connections on the way, then reports pend.
// Without wait, it returns when it would have to wait (the timer is set) and keeps pend.
func (w *Writer) flush(ctx context.Context, wait bool) error {
	w.timer.Stop()
	for len(w.buf) > 0 || w.needsRecovery() {
		if w.conn.c == nil || w.conn.broken() {
			if err := w.connect(ctx, wait); err != nil {
				return w.failed(err)
			}
			continue
		}
		if err := w.room(ctx, wait); err != nil {
			return w.failed(err)
		}
		if w.conn.broken() || len(w.buf) == 0 {
			continue
		}
		n, err := w.writeOut()
		if err != nil {
			w.broke(w.o.Now(), n, err)
			continue
		}
		w.keep()
	}
	if len(w.pend) > 0 {
		w.done(nil)
	}
	return nil
}

func (w *Writer) needsRecovery() bool {
	return !w.cutoff.IsZero() || (w.conn.c != nil && w.conn.broken())
}

// failed ends a flush that could not finish: without wait it keeps pend for later; with a
// context's error it reports pend failed and forgets it.
func (w *Writer) failed(err error) error {
	if errors.Is(err, errLater) {
		return nil
	}
	if len(w.pend) > 0 {
		w.done(err)
	}
	return err
}

// keep moves the messages just written from buf to kept.
func (w *Writer) keep() {
	now, start := w.o.Now(), 0
	written := 0
	for _, p := range w.pend {
		if p.end > start {
			w.kept = append(w.kept, kept{at: now, b: w.buf[start:p.end:p.end]})
			written++
		}
		start = p.end
	}
	w.keptN += len(w.buf)
	w.stats.written.Add(int64(written))
	w.resent += w.partial
	w.stats.resent.Add(int64(w.partial))
	w.partial = 0
	w.buf = make([]byte, 0, cap(w.buf)) // kept holds the old one
	w.noteKept()
}

// done reports pend and starts a new batch.
func (w *Writer) done(err error) {
	r := Report{N: len(w.pend), Last: w.pend[len(w.pend)-1].tag, Resent: w.resent, Err: err}
	if err == nil {
		for _, p := range w.pend {
			if p.rej != nil {
				r.Rejected = append(r.Rejected, *p.rej)
			}
		}
	} else {
		w.buf = w.buf[:0]
		w.partial = 0
	}
	w.resent = 0
	clear(w.pend)
	w.pend = w.pend[:0]
	w.report(r)
}

// Stats returns the totals; safe to call at any time, also while a Write blocks.
func (w *Writer) Stats() Stats {
	s := Stats{Written: w.stats.written.Load(), Resent: w.stats.resent.Load(), Rejected: w.stats.rejected.Load(),
		Shortened: w.stats.shortened.Load(), Connects: w.stats.connects.Load(), Failures: w.stats.failures.Load(),
		RoomWaits: w.stats.roomWaits.Load(), KeptBytes: w.stats.keptN.Load()}
	if ns := w.stats.oldest.Load(); ns != 0 {
		s.KeptOldest = time.Unix(0, ns)
	}
	return s
}

func (w *Writer) noteKept() {
	w.stats.keptN.Store(int64(w.keptN))
	if len(w.kept) == 0 {
		w.stats.oldest.Store(0)
	} else {
		w.stats.oldest.Store(w.kept[0].at.UnixNano())
	}
}
