package syslog

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/nontransparent"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// receiver is a syslog receiver for tests that parses what it gets with go-syslog (RFC 5424
// with a strict MSG, octet counting as RFC 5425 has it or LF frames as RFC 6587 has them).
// A frame it cannot parse is an error the test reports; it can stop reading, drop its
// connections with a reset (losing what its kernel held, as a restarting daemon does), and
// listen again on the same address.
type receiver struct {
	t       *testing.T
	network string // tcp or udp
	framing Framing
	tls     *tls.Config
	addr    string

	mu    sync.Mutex
	ln    net.Listener
	pc    net.PacketConn
	conns map[net.Conn]bool // true: dropped by the receiver (a partial last frame is expected)
	msgs  []*rfc5424.SyslogMessage
	errs  []error
	// hold, if set, is called after each message with how many have arrived, from the
	// connection's reading goroutine: blocking in it stops reading that connection.
	hold    func(n int)
	wg      sync.WaitGroup
	reading int // connections being read

}

func newReceiver(t *testing.T, network string, f Framing, tc *tls.Config) *receiver {
	t.Helper()
	r := &receiver{t: t, network: network, framing: f, tls: tc, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	r.start()
	t.Cleanup(func() {
		r.stop()
		r.wg.Wait()
		for _, err := range r.errors() {
			t.Errorf("receiver: %v", err)
		}
	})
	return r
}

// start listens on r.addr (the same port as before after a stop).
func (r *receiver) start() {
	r.t.Helper()
	if r.network == "udp" {
		pc, err := net.ListenPacket("udp", r.addr)
		if err != nil {
			r.t.Fatal(err)
		}
		r.mu.Lock()
		r.pc, r.addr = pc, pc.LocalAddr().String()
		r.mu.Unlock()
		r.wg.Add(1)
		go r.datagrams(pc)
		return
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.ln, r.addr = ln, ln.Addr().String()
	r.mu.Unlock()
	r.wg.Add(1)
	go r.accept(ln)
}

// stop closes the listener and drops every connection with a reset.
func (r *receiver) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	if r.pc != nil {
		r.pc.Close()
		r.pc = nil
	}
	r.dropLocked()
}

// drop resets every open connection: what the receiver's kernel held is lost.
func (r *receiver) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropLocked()
}

func (r *receiver) dropLocked() {
	for c, dropped := range r.conns {
		if dropped {
			continue
		}
		r.conns[c] = true
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

func (r *receiver) accept(ln net.Listener) {
	defer r.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		var rc net.Conn = c
		if r.tls != nil {
			rc = tls.Server(c, r.tls)
		}
		r.mu.Lock()
		r.conns[rc] = false
		r.reading++
		r.mu.Unlock()
		r.wg.Add(1)
		go r.read(rc)
	}
}

func (r *receiver) read(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		c.Close()
		r.mu.Lock()
		r.reading--
		r.mu.Unlock()
	}()
	if tc, ok := c.(*tls.Conn); ok && tc.Handshake() != nil {
		return // refused: the writer hears why
	}
	in := &counting{r: c}
	listen := gosyslog.WithListener(func(res *gosyslog.Result) { r.got(c, in, res) })
	strict := gosyslog.WithMachineOptions(rfc5424.WithCompliantMsg())
	var p gosyslog.Parser
	if r.framing == LF {
		p = nontransparent.NewParser(listen, strict)
	} else {
		p = octetcounting.NewParser(listen, strict)
	}
	p.Parse(in)
}

// counting counts the bytes read from a connection.
type counting struct {
	r io.Reader
	n atomic.Int64
}

func (c *counting) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (r *receiver) got(c net.Conn, in *counting, res *gosyslog.Result) {
	r.mu.Lock()
	var n int
	if res.Error != nil {
		// A connection closed before its first byte (the writer reconnected and had nothing
		// to send) is not an error; one the receiver dropped may end in a cut frame.
		if dropped := r.conns[c]; !dropped && in.n.Load() > 0 {
			r.errs = append(r.errs, res.Error)
		}
	} else {
		r.msgs = append(r.msgs, res.Message.(*rfc5424.SyslogMessage))
		n = len(r.msgs)
	}
	hold := r.hold
	r.mu.Unlock()
	if n > 0 && hold != nil {
		hold(n)
	}
}

func (r *receiver) datagrams(pc net.PacketConn) {
	defer r.wg.Done()
	m := rfc5424.NewMachine(rfc5424.WithCompliantMsg())
	b := make([]byte, 65536)
	for {
		n, _, err := pc.ReadFrom(b)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				r.mu.Lock()
				r.errs = append(r.errs, err)
				r.mu.Unlock()
			}
			return
		}
		msg, err := m.Parse(b[:n])
		r.mu.Lock()
		if err != nil {
			r.errs = append(r.errs, err)
		} else {
			r.msgs = append(r.msgs, msg.(*rfc5424.SyslogMessage))
		}
		r.mu.Unlock()
	}
}

func (r *receiver) messages() []*rfc5424.SyslogMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*rfc5424.SyslogMessage(nil), r.msgs...)
}

func (r *receiver) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func (r *receiver) url(scheme string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return scheme + "://" + r.addr
}

// settled returns the messages once every connection is read to its end (the writer
// closed it, or the receiver dropped it).
func (r *receiver) settled() []*rfc5424.SyslogMessage {
	r.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		n := r.reading
		r.mu.Unlock()
		if n == 0 {
			return r.messages()
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d connections still open", n)
		}
	}
}

// waitFor waits until n messages arrived, or fails the test after d.
func (r *receiver) waitFor(n int, d time.Duration) []*rfc5424.SyslogMessage {
	r.t.Helper()
	for deadline := time.Now().Add(d); ; {
		if m := r.messages(); len(m) >= n || time.Now().After(deadline) {
			if len(m) < n {
				r.t.Fatalf("receiver has %d messages, want %d", len(m), n)
			}
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
}
