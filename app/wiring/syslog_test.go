package wiring

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/nontransparent"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/syslog"
)

// receiver is a TCP syslog receiver that parses what it gets strictly (RFC 5425 octet
// counting, RFC 5424 with go-syslog). dropAt, if set, is called with the count of messages
// so far: true resets every connection, losing what the receiver's kernel held.
type receiver struct {
	t      *testing.T
	ln     net.Listener
	lf     bool // LF framing (RFC 6587 non-transparent) instead of octet counting
	mu     sync.Mutex
	msgs   []*rfc5424.SyslogMessage
	conns  []net.Conn
	dropAt func(n int) bool
	wg     sync.WaitGroup
}

func newReceiver(t *testing.T) *receiver { return newReceiverWith(t, false, nil) }

// newReceiverWith is a receiver with LF framing if lf, over TLS with tc if set.
func newReceiverWith(t *testing.T, lf bool, tc *tls.Config) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	r := &receiver{t: t, ln: ln, lf: lf}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Add(1)
			go r.read(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *receiver) read(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	in := &stopReader{r: bufio.NewReader(c)}
	parser := octetcounting.NewParser
	if r.lf {
		parser = nontransparent.NewParser
	}
	parser(gosyslog.WithListener(func(res *gosyslog.Result) {
		if res.Error != nil {
			in.stop.Store(true) // a frame cut by a reset; a bad frame shows as a missing detection
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, res.Message.(*rfc5424.SyslogMessage))
		if r.dropAt != nil && r.dropAt(len(r.msgs)) {
			for _, c := range r.conns {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				c.Close()
			}
		}
		r.mu.Unlock()
	}), gosyslog.WithMachineOptions(rfc5424.WithCompliantMsg())).Parse(in)
}

// stopReader ends the parser's input at its first error: a cut frame ends the connection.
type stopReader struct {
	r    io.Reader
	stop atomic.Bool
}

func (s *stopReader) Read(b []byte) (int, error) {
	if s.stop.Load() {
		return 0, io.EOF
	}
	return s.r.Read(b)
}

func (r *receiver) messages() []*rfc5424.SyslogMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*rfc5424.SyslogMessage(nil), r.msgs...)
}

// syslogTenant is a stand-in tenant of n alerts and a configuration sending them to url.
func syslogTenant(t *testing.T, n int, url, format string) *config.Config {
	cfg := tenantWith(t, n, "syslog")
	cfg.Syslog = syslog.Options{URL: url, Resend: time.Second, Linger: 10 * time.Millisecond, Timeout: 2 * time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
	cfg.SyslogFormat = format
	return cfg
}

// wantFullIDs reads the tenant's alerts as the collector does and makes their detections'
// FullIds: what the receiver must get.
func wantFullIDs(t *testing.T, cfg *config.Config) map[string]string {
	rd, err := defender.New(cfg.Defender)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	now := time.Now()
	_, err = bridge.DefenderSource(rd).Read(context.Background(), bridge.Window{From: now.Add(-3 * time.Hour), To: now.Add(time.Minute)},
		func(r bridge.Record, _ bridge.Position) error {
			ds, err := siem.Build(r.Data)
			if err != nil {
				t.Fatalf("alert %s: %v", r.ID, err)
			}
			for _, d := range ds {
				want[d.FullID] = r.ID
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

var cefFullID = regexp.MustCompile(`cs3=((?:[^ \\]|\\.)*) cs3Label=FullId`)

// gotFullIDs counts the FullIds of the CEF detections received.
func gotFullIDs(t *testing.T, msgs []*rfc5424.SyslogMessage) map[string]int {
	got := map[string]int{}
	for _, m := range msgs {
		if m.MsgID == nil || *m.MsgID != "detection" || m.Message == nil || m.Appname == nil || *m.Appname != "defender_alerts" {
			t.Fatalf("a message that is not a detection: %+v", m)
		}
		sub := cefFullID.FindStringSubmatch(*m.Message)
		if sub == nil || !strings.HasPrefix(*m.Message, "CEF:0|Microsoft|Microsoft Defender ATP|2.0|") {
			t.Fatalf("not a CEF detection with a FullId: %.300s", *m.Message)
		}
		got[strings.NewReplacer(`\=`, `=`, `\\`, `\`).Replace(sub[1])]++
	}
	return got
}

// drainTo builds the collector for cfg and drains its tenant once.
func drainTo(t *testing.T, cfg *config.Config) *Collector {
	c, err := New(cfg, slog.New(slog.NewTextHandler(tWriter{t}, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pump.Drain(context.Background()); err != nil {
		c.Close()
		t.Fatal(err)
	}
	c.Close() // flushes the connection; the pump's last save follows
	return c
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func checkpointDone(t *testing.T, c *Collector) {
	st, err := c.Store.Load()
	if err != nil || st == nil || st.Window != nil || time.Since(st.Watermark) > time.Minute {
		t.Errorf("checkpoint %+v (%v), want the window done", st, err)
	}
}

// Every alert of the tenant reaches a syslog receiver as its CEF detections, once each, and
// the checkpoint moves past them.
func TestSyslogOutputCEF(t *testing.T) {
	r := newReceiver(t)
	cfg := syslogTenant(t, 120, "tcp://"+r.ln.Addr().String(), "cef")
	want := wantFullIDs(t, cfg)
	c := drainTo(t, cfg)
	checkpointDone(t, c)
	got := gotFullIDs(t, r.messages())
	for id, alert := range want {
		if got[id] != 1 {
			t.Errorf("detection %s of alert %s arrived %d times, want once", id, alert, got[id])
		}
	}
	if len(got) != len(want) || len(want) < 120 {
		t.Errorf("got %d distinct detections, want the %d of 120 alerts", len(got), len(want))
	}
	if s := c.Pump.Stats(); s.Confirmed != 120 || s.Rejected != 0 {
		t.Errorf("confirmed %d, dead-lettered %d; want 120, 0", s.Confirmed, s.Rejected)
	}
}

// A receiver that resets its connections mid-run loses what its kernel held: the collector
// re-sends, and every detection arrives at least once.
func TestSyslogOutputConnectionDropped(t *testing.T) {
	r := newReceiver(t)
	drops := 0
	r.dropAt = func(n int) bool {
		if n%150 == 0 && drops < 3 {
			drops++
			return true
		}
		return false
	}
	cfg := syslogTenant(t, 300, "tcp://"+r.ln.Addr().String(), "cef")
	want := wantFullIDs(t, cfg)
	c := drainTo(t, cfg)
	checkpointDone(t, c)
	got := gotFullIDs(t, r.messages())
	missing, dups := 0, 0
	for id := range want {
		if got[id] == 0 {
			missing++
		}
		dups += max(got[id]-1, 0)
	}
	t.Logf("%d detections, %d drops, %d duplicates, pump resent %d", len(want), drops, dups, c.Pump.Stats().Resent)
	if missing > 0 || drops == 0 {
		t.Errorf("%d of %d detections never arrived (%d drops)", missing, len(want), drops)
	}
}

var cefExternalID = regexp.MustCompile(` externalId=(\S+)`)

// An alert siem.Build refuses sends nothing and is answered at once, refused with its JSON for
// the dead-letter file; one after a sent record waits for that record's answer, in order.
func TestSyslogBuildFailureIsRejected(t *testing.T) {
	r := newReceiver(t)
	k, err := newSyslogSink(syslog.Options{URL: "tcp://" + r.ln.Addr().String(), Linger: time.Hour}, "cef", [3]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.w.Close(context.Background())
	var got []bridge.Outcome
	sink := k.open(func(o bridge.Outcome) { got = append(got, o) })
	ctx := context.Background()
	bad := bridge.Record{ID: "bad1", Data: []byte(`{"id":"bad1","lastUpdateTime":"not a time"}`)}
	if err := sink.Add(ctx, bad, &bridge.Tag{}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].N != 1 || len(got[0].Rejected) != 1 || got[0].Rejected[0].ID != "bad1" ||
		!json.Valid(got[0].Rejected[0].Envelope) || got[0].Rejected[0].Text == "" {
		t.Fatalf("a record Build refuses: %+v, want it answered refused", got)
	}
	cfg := tenantWith(t, 1, "syslog")
	var good bridge.Record
	rd, _ := defender.New(cfg.Defender)
	bridge.DefenderSource(rd).Read(ctx, bridge.Window{From: time.Now().Add(-3 * time.Hour), To: time.Now()}, func(rec bridge.Record, _ bridge.Position) error {
		good = bridge.Record{ID: rec.ID, Time: rec.Time, Data: append([]byte(nil), rec.Data...)}
		return nil
	})
	bad.ID = "bad2"
	if sink.Add(ctx, good, &bridge.Tag{}) != nil || sink.Add(ctx, bad, &bridge.Tag{}) != nil || len(got) != 1 {
		t.Fatalf("answered before the flush: %+v", got)
	}
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].N != 2 || got[1].Err != nil || len(got[1].Rejected) != 1 || got[1].Rejected[0].Index != 1 || got[1].Sent == 0 {
		t.Errorf("a sent record then a refused one: %+v, want one batch of 2, the second refused", got[1:])
	}
}
