package syslog

import (
	"errors"
	"strings"
	"testing"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

func testOptions(url string) Options {
	fac, sev := AuthPriv, Warning
	return Options{URL: url, Hostname: "collector-1.example", Facility: &fac, Severity: &sev}
}

func TestMessageBytes(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("X", 3600))
	tests := []struct {
		name string
		give Message
		want string
	}{
		{"all fields", Message{Time: at, MsgID: "alert", Body: []byte("CEF:0|a|b")},
			"<84>1 2026-03-04T04:06:07.891234Z collector-1.example defender_alerts 4242 alert - CEF:0|a|b"},
		{"no time, no id, no body", Message{},
			"<84>1 - collector-1.example defender_alerts 4242 - -"},
		{"whole second keeps its fraction", Message{Time: at.Truncate(time.Second), MsgID: "d", Body: []byte(" x ")},
			"<84>1 2026-03-04T04:06:07.000000Z collector-1.example defender_alerts 4242 d -  x "},
	}
	o := testOptions("tcp://127.0.0.1:1")
	if _, err := o.resolve(); err != nil {
		t.Fatal(err)
	}
	h := newHeader(&o, "4242")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(h.appendMessage(nil, &tt.give))
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if n := h.headLen(&tt.give) + len(tt.give.Body); len(tt.give.Body) > 0 && n != len(got) {
				t.Errorf("headLen+body = %d, message is %d bytes", n, len(got))
			}
		})
	}
}

// parseOctets parses a stream of octet-counted frames with go-syslog, strictly.
func parseOctets(t testing.TB, b []byte) ([]*rfc5424.SyslogMessage, []error) {
	var msgs []*rfc5424.SyslogMessage
	var errs []error
	p := octetcounting.NewParser(gosyslog.WithMachineOptions(rfc5424.WithCompliantMsg()),
		gosyslog.WithListener(func(r *gosyslog.Result) {
			if r.Error != nil {
				errs = append(errs, r.Error)
				return
			}
			msgs = append(msgs, r.Message.(*rfc5424.SyslogMessage))
		}))
	p.Parse(strings.NewReader(string(b)))
	return msgs, errs
}

// checkParsed compares a parsed message with what was sent.
func checkParsed(t testing.TB, got *rfc5424.SyslogMessage, o *Options, m Message) {
	t.Helper()
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	if got.Priority == nil || int(*got.Priority) != int(*o.Facility)*8+int(*o.Severity) {
		t.Errorf("PRI %v", got.Priority)
	}
	if got.Version != 1 || str(got.Hostname) != o.Hostname || str(got.Appname) != o.AppName {
		t.Errorf("version %d host %q app %q", got.Version, str(got.Hostname), str(got.Appname))
	}
	wantID := m.MsgID
	if wantID == "" || wantID == "-" {
		wantID = "<nil>"
	}
	if str(got.MsgID) != wantID {
		t.Errorf("MSGID %q, want %q", str(got.MsgID), wantID)
	}
	if m.Time.IsZero() != (got.Timestamp == nil) || (got.Timestamp != nil && !got.Timestamp.Equal(m.Time.Truncate(time.Microsecond))) {
		t.Errorf("TIMESTAMP %v, want %v", got.Timestamp, m.Time)
	}
	wantBody := string(m.Body)
	if wantBody == "" {
		wantBody = "<nil>"
	}
	if str(got.Message) != wantBody {
		t.Errorf("MSG %q, want %q", str(got.Message), wantBody)
	}
}

// Hostile bodies cross octet counting whole: the parser sees exactly what was sent.
func TestOctetCountingRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	bodies := []string{"plain", "line\nbreak\r\nand\ttab", "pipes|back\\slash=eq^caret", "non-ASCII: é ü 日本 🙂",
		"12 <13>1 looks like a frame", strings.Repeat("x", 5000), "trailing space ", " leading", "\n"}
	o := testOptions("tcp://127.0.0.1:1")
	if _, err := o.resolve(); err != nil {
		t.Fatal(err)
	}
	h := newHeader(&o, "77")
	var stream []byte
	var sent []Message
	for i, b := range bodies {
		m := Message{Time: at.Add(time.Duration(i) * time.Second), MsgID: "kind" + string(rune('A'+i)), Body: []byte(b)}
		stream = appendFrame(stream, h.appendMessage(nil, &m), OctetCounting, true)
		sent = append(sent, m)
	}
	msgs, errs := parseOctets(t, stream)
	if len(errs) > 0 || len(msgs) != len(sent) {
		t.Fatalf("parsed %d of %d, errors %v", len(msgs), len(sent), errs)
	}
	for i := range sent {
		checkParsed(t, msgs[i], &o, sent[i])
	}
}

func FuzzOctetCountingRoundTrip(f *testing.F) {
	f.Add([]byte("CEF:0|Microsoft|x|2.0|id|name|5|a=b"), "detection", int64(1700000000123456789))
	f.Add([]byte("\n\n12 <1>1 - - - - - -"), "", int64(0))
	f.Add([]byte{0xff, 0xfe, 0}, "a", int64(-1))
	o := testOptions("tcp://127.0.0.1:1")
	if _, err := o.resolve(); err != nil {
		f.Fatal(err)
	}
	h := newHeader(&o, "1")
	f.Fuzz(func(t *testing.T, body []byte, msgID string, ns int64) {
		m := Message{MsgID: msgID, Body: body}
		if ns > 0 {
			m.Time = time.Unix(0, ns)
		}
		if checkMessage(&m) != nil || len(body) > 4000 {
			return // refused before framing (see TestWriterRejects)
		}
		if len(body) >= 3 && string(body[:3]) == "\xef\xbb\xbf" {
			return // RFC 5424's MSG-UTF8: a BOM promises UTF-8, which the caller must keep
		}
		two := appendFrame(nil, h.appendMessage(nil, &m), OctetCounting, true)
		two = appendFrame(two, h.appendMessage(nil, &m), OctetCounting, true)
		msgs, errs := parseOctets(t, two)
		if len(errs) > 0 || len(msgs) != 2 {
			t.Fatalf("parsed %d of 2, errors %v, stream %q", len(msgs), errs, two)
		}
		for _, got := range msgs {
			checkParsed(t, got, &o, m)
		}
	})
}

func TestOptionsRefused(t *testing.T) {
	fac, sev := Facility(24), Severity(8)
	tests := []struct {
		name    string
		give    Options
		setting string
	}{
		{"no URL", Options{}, "URL"},
		{"http", Options{URL: "http://h:514"}, "URL"},
		{"no port", Options{URL: "tcp://h"}, "URL"},
		{"port 0", Options{URL: "tcp://h:0"}, "URL"},
		{"path", Options{URL: "udp://h:514/x"}, "URL"},
		{"credentials", Options{URL: "tls://u:p@h:6514"}, "URL"},
		{"CA on tcp", Options{URL: "tcp://h:514", CAFile: "/x"}, "URL"},
		{"missing CA file", Options{URL: "tls://h:6514", CAFile: "/nonexistent/ca.pem"}, "CAFile"},
		{"cert without key", Options{URL: "tls://h:6514", CertFile: "/x"}, "CertFile"},
		{"framing", Options{URL: "tcp://h:514", Framing: 7}, "Framing"},
		{"hostname with a space", Options{URL: "tcp://h:514", Hostname: "a b"}, "Hostname"},
		{"long app name", Options{URL: "tcp://h:514", AppName: strings.Repeat("a", 49)}, "AppName"},
		{"facility", Options{URL: "tcp://h:514", Facility: &fac}, "Facility"},
		{"severity", Options{URL: "tcp://h:514", Severity: &sev}, "Severity"},
		{"tiny MaxSize", Options{URL: "tcp://h:514", MaxSize: 100}, "MaxSize"},
		{"datagram over 64k", Options{URL: "udp://h:514", MaxSize: 70000}, "MaxSize"},
		{"Keep under two messages", Options{URL: "tcp://h:514", Keep: 1000}, "Keep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.give, func(Report) {})
			var se *SettingError
			if !errors.As(err, &se) || se.Setting != tt.setting {
				t.Fatalf("got %v, want a SettingError for %s", err, tt.setting)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	for _, tt := range []struct {
		url  string
		size int
	}{{"udp://h:514", DefaultUDPSize}, {"tcp://h:514", DefaultTCPSize}, {"tls://h:6514", DefaultTCPSize}} {
		o := Options{URL: tt.url}
		if _, err := o.resolve(); err != nil {
			t.Fatal(err)
		}
		if o.MaxSize != tt.size || *o.Facility != Local4 || *o.Severity != Notice || o.AppName != "defender_alerts" ||
			o.Hostname == "" || o.Resend != 5*time.Second {
			t.Errorf("%s: %+v", tt.url, o)
		}
	}
}
