package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/siem/siemtest"
)

// udpReceiver takes datagrams, each one RFC 5424 message parsed strictly.
type udpReceiver struct {
	conn net.PacketConn
	mu   sync.Mutex
	msgs []*rfc5424.SyslogMessage
	size []int // each datagram's bytes
	bad  []string
	done chan struct{}
}

func newUDPReceiver(t *testing.T) *udpReceiver {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &udpReceiver{conn: c, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		b := make([]byte, 1<<16)
		p := rfc5424.NewParser(rfc5424.WithCompliantMsg())
		for {
			n, _, err := c.ReadFrom(b)
			if err != nil {
				return
			}
			m, err := p.Parse(append([]byte(nil), b[:n]...))
			r.mu.Lock()
			if err != nil {
				r.bad = append(r.bad, err.Error())
			} else {
				r.msgs, r.size = append(r.msgs, m.(*rfc5424.SyslogMessage)), append(r.size, n)
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-r.done })
	return r
}

// tenantDetections reads cfg's tenant as the collector does: each alert's detections by id.
func tenantDetections(t *testing.T, cfg *config.Config) map[string][]siem.Detection {
	t.Helper()
	rd, err := defender.New(cfg.Defender)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]siem.Detection{}
	now := time.Now()
	_, err = bridge.DefenderSource(rd).Read(context.Background(), bridge.Window{From: now.Add(-3 * time.Hour), To: now.Add(time.Minute)},
		func(rec bridge.Record, _ bridge.Position) error {
			ds, err := siem.Build(rec.Data)
			if err != nil {
				t.Fatalf("alert %s: %v", rec.ID, err)
			}
			out[rec.ID] = ds
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Over UDP (1,400 bytes), the stand-in's detections, most of them longer than that in full,
// all arrive shortened to fit, valid CEF with their ids intact and the cut marked; none goes
// to the dead-letter file and the checkpoint moves past them all.
func TestSyslogUDPShortensToFit(t *testing.T) {
	r := newUDPReceiver(t)
	cfg := syslogTenant(t, 30, "udp://"+r.conn.LocalAddr().String(), "cef") // 30: the socket buffer holds every datagram
	want := wantFullIDs(t, cfg)
	cef := siem.NewCEF(siem.CEFOptions{})
	// The syslog header takes under 90 bytes: a detection over 1,400 bytes in full must arrive
	// cut, one of 1,310 or less must not, and one between them depends on its header.
	full := map[string]int{} // FullID: the detection's CEF length in full
	over := 0
	for _, ds := range tenantDetections(t, cfg) {
		for i := range ds {
			n := len(cef.Append(nil, &ds[i]))
			full[ds[i].FullID] = n
			if n > 1400 {
				over++
			}
		}
	}
	c := drainTo(t, cfg)
	checkpointDone(t, c)
	if s := c.Pump.Stats(); s.Confirmed != 30 || s.Rejected != 0 {
		t.Errorf("confirmed %d, dead-lettered %d; want 30, 0", s.Confirmed, s.Rejected)
	}
	time.Sleep(50 * time.Millisecond) // the last datagrams' way through loopback
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		t.Errorf("%d datagrams are not RFC 5424: %s", len(r.bad), r.bad[0])
	}
	got := gotFullIDs(t, r.msgs)
	for id, alert := range want {
		if got[id] != 1 {
			t.Errorf("detection %s of alert %s arrived %d times, want once", id, alert, got[id])
		}
	}
	cut := 0
	for i, m := range r.msgs {
		if r.size[i] > 1400 {
			t.Errorf("a datagram of %d bytes, over 1,400", r.size[i])
		}
		e, err := siemtest.ParseCEF(*m.Message)
		if err != nil {
			t.Fatalf("strict CEF parser: %v\n%s", err, *m.Message)
		}
		wasCut := strings.HasSuffix(e.Ext["msg"], "…") || strings.HasSuffix(e.Ext["cs2"], "…") || strings.HasSuffix(e.Name, "…")
		if wasCut {
			cut++
		}
		id := e.Ext["cs3"]
		n, ok := full[id]
		switch {
		case !ok:
			t.Errorf("a datagram names detection %q, which the tenant does not have", id)
		case n > 1400 && !wasCut:
			t.Errorf("detection %s is %d bytes in full but arrived whole in %d", id, n, r.size[i])
		case n <= 1400-90 && wasCut:
			t.Errorf("detection %s is %d bytes in full, room enough, but arrived cut", id, n)
		}
	}
	t.Logf("%d detections, %d over 1,400 bytes in full, %d arrived with free text cut", len(want), over, cut)
	if over == 0 {
		t.Error("no detection is too long for a datagram: the test proves nothing")
	}
}

// hugeDetector gives the alerts it reads that pick chooses (by their count from 1; default
// every fifth from the second) a 1,000-character detectorId: the CEF class id, which is never
// shortened, so none of their detections fits 1,400 bytes.
type hugeDetector struct {
	bridge.Source
	pick func(n int) bool
	mu   sync.Mutex
	n    int
	huge map[string]bool
	last string // the last alert read
}

func (s *hugeDetector) Read(ctx context.Context, w bridge.Window, emit func(bridge.Record, bridge.Position) error) (bridge.SourceStats, error) {
	return s.Source.Read(ctx, w, func(r bridge.Record, p bridge.Position) error {
		s.mu.Lock()
		s.n++
		if s.pick == nil && s.n%5 == 2 || s.pick != nil && s.pick(s.n) {
			s.huge[r.ID] = true
		}
		s.last = r.ID
		huge := s.huge[r.ID]
		s.mu.Unlock()
		if huge {
			var a map[string]any
			if err := json.Unmarshal(r.Data, &a); err != nil {
				return err
			}
			a["detectorId"] = strings.Repeat("D", 1000)
			r.Data, _ = json.Marshal(a)
		}
		return emit(r, p)
	})
}

// drainThrough drains cfg's tenant once through src (wrapping the stand-in's source), the
// real pump and a syslog sink, as New assembles them, logging to log.
func drainThrough(t *testing.T, cfg *config.Config, wrap func(bridge.Source) bridge.Source, log io.Writer) (bridge.Stats, *checkpoint.State) {
	t.Helper()
	rd, err := defender.New(cfg.Defender)
	if err != nil {
		t.Fatal(err)
	}
	k, err := newSyslogSink(cfg.Syslog, cfg.SyslogFormat, cfg.SyslogHeader)
	if err != nil {
		t.Fatal(err)
	}
	store, err := checkpoint.Open(cfg.StateDir, cfg.Input)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pump := bridge.New(bridge.Config{Store: store, Log: slog.New(slog.NewTextHandler(io.MultiWriter(log, tWriter{t}), nil)),
		Start: cfg.Start, Overlap: cfg.Overlap, TimeResolution: defender.TimeResolution, Clock: rd.APITime,
		DeadLetter: bridge.DeadLetterPath(cfg.StateDir, cfg.Input)}, wrap(bridge.DefenderSource(rd)), k.open)
	err = pump.Drain(context.Background())
	k.w.Close(context.Background())
	pump.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	return pump.Stats(), st
}

// A detection that does not fit the size limit even shortened (its class id alone is too
// long) sends its alert to the dead-letter file with the reason and a log line, never silently
// dropped; the other alerts arrive, shortened to fit; and the checkpoint moves past them all.
// (TCP with UDP's limit stands in for UDP, which may itself lose datagrams on a busy host.)
func TestSyslogOversizeToDeadLetter(t *testing.T) {
	r := newReceiver(t)
	cfg := syslogTenant(t, 60, "tcp://"+r.ln.Addr().String(), "cef")
	cfg.Syslog.MaxSize = 1400
	src := &hugeDetector{huge: map[string]bool{}}
	var log bytes.Buffer
	stats, st := drainThrough(t, cfg, func(s bridge.Source) bridge.Source { src.Source = s; return src }, &log)
	if st == nil || st.Window != nil || time.Since(st.Watermark) > time.Minute || src.huge[src.last] {
		t.Errorf("checkpoint %+v, want the window done (the last alert %s fits)", st, src.last)
	}
	if stats.Confirmed != 60-len(src.huge) || stats.Rejected != len(src.huge) || len(src.huge) != 12 {
		t.Errorf("confirmed %d, dead-lettered %d; want %d, %d", stats.Confirmed, stats.Rejected, 60-len(src.huge), len(src.huge))
	}
	dead := map[string]bool{}
	b, err := os.ReadFile(bridge.DeadLetterPath(cfg.StateDir, cfg.Input))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			ID       string          `json:"alert_id"`
			Output   string          `json:"output"`
			Text     string          `json:"reason"`
			Envelope json.RawMessage `json:"envelope"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Output != "syslog output" || !strings.Contains(e.Text, "too large for the size limit even when shortened") ||
			!strings.Contains(string(e.Envelope), `"id":"`+e.ID+`"`) || !strings.Contains(string(e.Envelope), strings.Repeat("D", 1000)) {
			t.Errorf("dead letter %.300s (%v)", line, err)
		}
		if !src.huge[e.ID] || dead[e.ID] {
			t.Errorf("alert %s dead-lettered (twice: %v), but its detections fit once shortened", e.ID, dead[e.ID])
		}
		dead[e.ID] = true
	}
	for id := range src.huge {
		if !strings.Contains(log.String(), `msg="the syslog output could not send an alert (message too large for the size limit even when shortened: `) ||
			!strings.Contains(log.String(), "alert_id="+id) {
			t.Errorf("no log line names alert %s and its reason", id)
		}
	}
	if strings.Contains(log.String(), "Splunk") || strings.Contains(log.String(), "hec_") {
		t.Errorf("the log speaks of Splunk or HEC for the syslog output:\n%s", log.String())
	}
	arrived, cut := map[string]bool{}, 0
	for _, m := range r.messages() {
		e, err := siemtest.ParseCEF(*m.Message)
		if err != nil {
			t.Fatalf("strict CEF parser: %v\n%s", err, *m.Message)
		}
		arrived[e.Ext["externalId"]] = true
		if strings.HasSuffix(e.Ext["msg"], "…") {
			cut++
		}
	}
	for id := range src.huge {
		if !dead[id] || arrived[id] {
			t.Errorf("alert %s does not fit: dead-lettered %v, arrived %v; want dead-lettered only", id, dead[id], arrived[id])
		}
	}
	t.Logf("60 alerts: %d arrived (%d messages with the description cut), %d dead-lettered", len(arrived), cut, len(dead))
	if len(arrived) != 60-len(src.huge) || cut == 0 {
		t.Errorf("%d alerts arrived, %d messages cut; want %d, some", len(arrived), cut, 60-len(src.huge))
	}
}

// When the last alert read does not fit, the pump holds it (the checkpoint stays before it)
// until what follows shows the refusal rare; the log says so in the syslog output's words.
func TestSyslogRefusedLastIsHeld(t *testing.T) {
	r := newReceiver(t)
	cfg := syslogTenant(t, 20, "tcp://"+r.ln.Addr().String(), "cef")
	cfg.Syslog.MaxSize = 1400
	src := &hugeDetector{huge: map[string]bool{}, pick: func(n int) bool { return n == 20 }}
	var log bytes.Buffer
	stats, st := drainThrough(t, cfg, func(s bridge.Source) bridge.Source { src.Source = s; return src }, &log)
	if !src.huge[src.last] || stats.Held != 1 || stats.Rejected != 0 || st == nil || st.Held == nil {
		t.Errorf("held %d, dead-lettered %d, checkpoint %+v: want the last alert held", stats.Held, stats.Rejected, st)
	}
	if !strings.Contains(log.String(), `msg="the syslog output refused the last alerts read; they are held back`) ||
		strings.Contains(log.String(), "Splunk") {
		t.Errorf("the log does not speak of the syslog output:\n%s", log.String())
	}
}
