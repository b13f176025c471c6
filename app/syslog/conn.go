package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// connection is one connection and the signal that it broke.
type connection struct {
	c     net.Conn
	sig   *signal
	since time.Time // when it was made
}

// signal fires once, when a connection is found broken, with the time and the cause.
type signal struct {
	once sync.Once
	ch   chan struct{}
	at   time.Time // set before ch closes
	err  error     // io.EOF: the receiver closed its side; nil: the writer closed it
}

func (s *signal) fire(at time.Time, err error) {
	s.once.Do(func() { s.at, s.err = at, err; close(s.ch) })
}

func (c connection) broken() bool {
	if c.sig == nil {
		return false
	}
	select {
	case <-c.sig.ch:
		return true
	default:
		return false
	}
}

// watch reads from a stream connection until it fails. A syslog receiver never sends, so
// any end of reading (EOF, a reset) means the connection is gone: the break is known when it
// happens, not when the next message is written (which may be much later), so the re-send
// window starts at the break.
func (w *Writer) watch(c net.Conn, sig *signal) {
	var b [256]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			sig.fire(w.o.Now(), err)
			w.timer.Reset(0) // recover (re-send) now, without waiting for the next message
			return
		}
	}
}

// broke closes the current connection after an error (cause) at `at`, n bytes of buf having
// been handed to it. A connection that broke sooner than Resend after it was made proves
// nothing about the receiver (it may take the handshake and then refuse us): the next attempt
// waits its backoff, and OnRetry hears it. One that lived longer resets the backoff: the
// first reconnect is immediate.
func (w *Writer) broke(at time.Time, n int, cause error) {
	if w.conn.broken() && w.conn.sig.at.Before(at) {
		at = w.conn.sig.at
	}
	if w.cutoff.IsZero() || at.Before(w.cutoff) {
		w.cutoff = at
	}
	start := 0
	for i, p := range w.pend {
		if start >= n {
			break
		}
		if p.end > start {
			w.partial = max(w.partial, i+1)
		}
		start = p.end
	}
	if w.conn.c == nil {
		return
	}
	if time.Since(w.conn.since) < w.o.Resend {
		w.retryLater(fmt.Errorf("connection lost %v after it was made: %w", time.Since(w.conn.since).Round(time.Millisecond), cause))
	} else {
		w.bo.Reset()
		w.next = time.Time{}
	}
	w.conn.sig.fire(at, nil)
	w.conn.c.Close()
	w.conn = connection{}
}

// retryLater counts a failed attempt, sets when the next may be made, and tells OnRetry.
func (w *Writer) retryLater(err error) {
	w.stats.failures.Add(1)
	d := w.bo.NextBackOff()
	w.next = time.Now().Add(d)
	if w.o.OnRetry != nil {
		w.o.OnRetry(err, d)
	}
}

// connect makes a new connection and re-sends on it what was written in the Resend window
// before the first unrecovered error. Without wait, it tries at most once, and only when the
// backoff allows; otherwise it sets the timer and returns errLater.
func (w *Writer) connect(ctx context.Context, wait bool) error {
	if w.conn.c != nil { // found broken by watch
		w.broke(w.conn.sig.at, 0, w.conn.sig.err)
	}
	for {
		if d := w.next.Sub(time.Now()); d > 0 {
			if !wait {
				w.timer.Reset(d)
				return errLater
			}
			if err := sleep(ctx, d, nil); err != nil {
				return err
			}
		}
		err := w.dialAndResend(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.retryLater(err)
	}
}

func (w *Writer) dialAndResend(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: w.o.Timeout, KeepAlive: 30 * time.Second}
	if w.t.tls != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: w.t.tls}).DialContext(ctx, "tcp", w.t.addr)
	} else {
		c, err = d.DialContext(ctx, w.t.network, w.t.addr)
	}
	if err != nil {
		return err
	}
	conn := connection{c: c, sig: &signal{ch: make(chan struct{})}, since: time.Now()}
	if w.stream {
		go w.watch(c, conn.sig)
	}
	if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().Version >= tls.VersionTLS13 {
		// A TLS 1.3 client finishes its handshake before the server has checked the
		// client's certificate: a refusal comes as an alert just after. Writing before it
		// would count messages confirmed on a connection the receiver never accepted.
		if err := sleep(ctx, tlsSettle, conn.sig.ch); err != nil || conn.broken() {
			c.Close()
			if err == nil {
				err = fmt.Errorf("the receiver closed the connection after the TLS handshake: %w", conn.sig.err)
			}
			return err
		}
	}
	if !w.cutoff.IsZero() {
		w.prune(w.cutoff.Add(-w.o.Resend))
		if err := w.resend(c); err != nil {
			c.Close()
			return err
		}
	}
	w.cutoff = time.Time{}
	w.stats.connects.Add(1)
	w.conn = conn
	return nil
}

// tlsSettle is how long a new TLS 1.3 connection is watched for a refusal before use.
const tlsSettle = 250 * time.Millisecond

// resend writes every kept message on c; they are then kept as written now, since c may
// break in its turn.
func (w *Writer) resend(c net.Conn) error {
	if len(w.kept) == 0 {
		return nil
	}
	c.SetWriteDeadline(time.Now().Add(w.o.Timeout))
	if w.stream {
		all := make([]byte, 0, w.keptN)
		for _, k := range w.kept {
			all = append(all, k.b...)
		}
		if _, err := c.Write(all); err != nil {
			return err
		}
	} else {
		for _, k := range w.kept {
			if _, err := c.Write(k.b); err != nil {
				return err
			}
		}
	}
	now := w.o.Now()
	for i := range w.kept {
		w.kept[i].at = now
	}
	w.resent += len(w.kept)
	w.stats.resent.Add(int64(len(w.kept)))
	w.noteKept()
	return nil
}

// writeOut writes buf: one write on a stream, one datagram per message on UDP. It returns the
// bytes handed to the connection.
func (w *Writer) writeOut() (int, error) {
	c := w.conn.c
	c.SetWriteDeadline(time.Now().Add(w.o.Timeout))
	if w.stream {
		return c.Write(w.buf)
	}
	start := 0
	for _, p := range w.pend {
		if p.end > start {
			if _, err := c.Write(w.buf[start:p.end]); err != nil {
				return start, err
			}
		}
		start = p.end
	}
	return start, nil
}

// prune forgets kept messages written before t.
func (w *Writer) prune(t time.Time) {
	i := 0
	for i < len(w.kept) && w.kept[i].at.Before(t) {
		w.keptN -= len(w.kept[i].b)
		i++
	}
	if i > 0 {
		clear(w.kept[:i])
		w.kept = w.kept[i:]
		w.noteKept()
	}
}

// room makes room in kept for buf: it forgets what is older than the Resend window and,
// while that is not enough, waits for the oldest to age out. It returns early if the
// connection breaks meanwhile. Without wait it sets the timer and returns errLater.
func (w *Writer) room(ctx context.Context, wait bool) error {
	for {
		w.prune(w.o.Now().Add(-w.o.Resend))
		if w.keptN+len(w.buf) <= w.o.Keep || len(w.kept) == 0 {
			return nil
		}
		d := w.kept[0].at.Add(w.o.Resend).Sub(w.o.Now()) + time.Millisecond
		if !wait {
			w.timer.Reset(d)
			return errLater
		}
		w.stats.roomWaits.Add(1)
		if err := sleep(ctx, d, w.conn.sig.ch); err != nil {
			return err
		}
		if w.conn.broken() {
			return nil
		}
	}
}

// shutdown ends the stream after a flush: it closes its writing side and waits for the
// receiver to close in turn, which a receiver does once it has read everything (a clean end
// of the stream). A reset instead means it lost some: the writer reconnects, re-sends as
// after any break, and tries again. A receiver that keeps the connection open for Timeout
// is left as it is.
func (w *Writer) shutdown(ctx context.Context) error {
	for {
		if w.conn.c == nil || w.conn.broken() {
			if !w.needsRecovery() {
				return nil
			}
			if err := w.connect(ctx, true); err != nil {
				return err
			}
			continue
		}
		c := w.conn
		if cw, ok := c.c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		if err := sleep(ctx, w.o.Timeout, c.sig.ch); err != nil {
			return err
		}
		if !c.broken() || errors.Is(c.sig.err, io.EOF) {
			return nil
		}
	}
}

// sleep waits d, or until ctx ends (its error) or wake closes (nil).
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	case <-wake:
		return nil
	}
}
