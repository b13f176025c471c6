package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/modinput"
	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/syslog"
)

// The MSGIDs of the syslog messages: one per record kind.
const (
	msgIDDetection = "detection"
	msgIDAlert     = "alert"
)

// syslogSink makes a syslog Writer a Sink. Each record (an Alert API alert) becomes one
// message per detection (CEF or LEEF, by enc), or, with enc nil, one message holding the
// alert's compact JSON. The Writer reports messages; the sink reports records: a record is
// confirmed when its last message is, and refused (Outcome.Rejected, for the dead-letter
// file) when siem.Build refuses it or the Writer refuses any of its messages.
type syslogSink struct {
	w      *syslog.Writer
	enc    func(dst []byte, d *siem.Detection) []byte // nil: json
	fit    func(dst []byte, d *siem.Detection, size int) ([]byte, bool)
	report func(bridge.Outcome)

	buf, line, short []byte
	limit            string // what sets the size limit, for a refusal's reason: "UDP" or "the size limit"

	mu sync.Mutex // guards what follows; the Writer reports with its own lock held
	// q holds the messages written and not yet reported, in the Writer's order.
	q      []*sysMsg
	resent int // re-sent messages not yet counted in an Outcome
	// count orders refusals and deliveries (Outcome.Sent, Rejected.Refused): the Writer
	// refuses a message when it takes it, so the order of the records is that order.
	count uint64
}

// sysRec is one record in flight.
type sysRec struct {
	id       string
	tag      *bridge.Tag
	data     []byte // the compact alert, kept only until the record is answered for the dead-letter file
	rejected string // why a message of it (or the whole record) was refused
	failed   error  // a message of it was not confirmed: its batch fails
}

// sysMsg is one message written; last marks its record's last. after are records that sent
// nothing (Build refused them), answered together with this message, which came before them.
type sysMsg struct {
	rec   *sysRec
	last  bool
	after []*sysRec
	det   *siem.Detection // the detection it holds, while Write has it (for shorten)
}

// newSyslogSink makes the Writer o describes; the sink's reports go where the pump's open
// says. format is cef, leef or json. A CEF or LEEF message over the Writer's size limit has
// its free text shortened to fit (siem's AppendFit); JSON is never altered.
func newSyslogSink(o syslog.Options, format string, header [3]string) (*syslogSink, error) {
	k := &syslogSink{}
	switch format {
	case "cef":
		c := siem.NewCEF(siem.CEFOptions{Vendor: header[0], Product: header[1], Version: header[2]})
		k.enc, k.fit = c.Append, c.AppendFit
	case "leef":
		l, err := siem.NewLEEF(siem.LEEFOptions{Vendor: header[0], Product: header[1], Version: header[2]})
		if err != nil {
			return nil, err
		}
		k.enc, k.fit = l.Append, l.AppendFit
	}
	if k.fit != nil {
		o.Shorten = k.shorten
	}
	k.limit = "the size limit"
	if strings.HasPrefix(strings.ToLower(o.URL), "udp:") {
		k.limit = "UDP"
	}
	w, err := syslog.New(o, k.heard)
	if err != nil {
		return nil, err
	}
	k.w = w
	return k, nil
}

func (k *syslogSink) open(report func(bridge.Outcome)) bridge.Sink {
	k.report = report
	return k
}

func (k *syslogSink) Add(ctx context.Context, r bridge.Record, t *bridge.Tag) error {
	k.buf = modinput.AppendCompactJSON(k.buf[:0], r.Data)
	rec := &sysRec{id: r.ID, tag: t, data: append([]byte(nil), k.buf...)}
	if k.enc == nil {
		return k.write(ctx, rec, nil, true, syslog.Message{Time: r.Time, MsgID: msgIDAlert, Body: k.buf})
	}
	ds, err := siem.Build(r.Data)
	if err != nil {
		rec.rejected = err.Error()
		k.refused(rec)
		return nil
	}
	for i := range ds {
		k.line = k.enc(k.line[:0], &ds[i])
		if err := k.write(ctx, rec, &ds[i], i == len(ds)-1, syslog.Message{Time: r.Time, MsgID: msgIDDetection, Body: k.line}); err != nil {
			return err
		}
	}
	return nil
}

// shorten is the Writer's Shorten: the message's detection again, its free text cut to fit
// room bytes. It runs inside Write, called from Add, which alone sets det.
func (k *syslogSink) shorten(m syslog.Message, room int) ([]byte, bool) {
	e, _ := m.Tag.(*sysMsg)
	if e == nil || e.det == nil {
		return nil, false
	}
	var ok bool
	k.short, ok = k.fit(k.short[:0], e.det, room)
	return k.short, ok
}

// write queues m's entry, then gives m to the Writer, which may report it at once. A message
// the Writer did not take is dropped from the queue (Add was the last to push); if it was not
// the record's first, the record ends with the message before it, failed.
func (k *syslogSink) write(ctx context.Context, rec *sysRec, det *siem.Detection, last bool, m syslog.Message) error {
	e := &sysMsg{rec: rec, last: last, det: det}
	k.mu.Lock()
	k.q = append(k.q, e)
	k.mu.Unlock()
	m.Tag = e
	err := k.w.Write(ctx, m)
	e.det = nil // the Writer has taken (or refused) the message
	if err != nil {
		k.mu.Lock()
		if n := len(k.q); n > 0 && k.q[n-1] == e {
			k.q = k.q[:n-1]
			if n > 1 && k.q[n-2].rec == rec {
				k.q[n-2].last, rec.failed = true, err
			}
		}
		k.mu.Unlock()
	}
	return err
}

// refused answers for a record that sends nothing: after the messages before it, or now.
func (k *syslogSink) refused(rec *sysRec) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n := len(k.q); n > 0 {
		k.q[n-1].after = append(k.q[n-1].after, rec)
		return
	}
	k.answer([]*sysRec{rec}, 0, nil)
}

func (k *syslogSink) Flush(ctx context.Context) error { return k.w.Flush(ctx) }

// heard is the Writer's report: its N messages leave the queue, and the records they end
// are answered for.
func (k *syslogSink) heard(r syslog.Report) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := min(r.N, len(k.q))
	msgs := k.q[:n]
	for _, rj := range r.Rejected {
		if rj.Index < n && msgs[rj.Index].rec.rejected == "" {
			msgs[rj.Index].rec.rejected = k.refusal(rj.Err)
		}
	}
	var recs []*sysRec
	for _, m := range msgs {
		if m.last {
			recs = append(recs, m.rec)
		}
		recs = append(recs, m.after...)
		if r.Err != nil {
			m.rec.failed = r.Err // its other messages may yet be confirmed: it is not
		}
	}
	k.q = append(k.q[:0], k.q[n:]...)
	k.resent += r.Resent
	if len(recs) > 0 {
		k.answer(recs, k.resent, r.Err)
		k.resent = 0
	}
}

// refusal is why the Writer refused a message, for the log and the dead-letter file.
func (k *syslogSink) refusal(err error) string {
	switch {
	case errors.Is(err, syslog.ErrTooBig) && k.fit != nil:
		return fmt.Sprintf("message too large for %s even when shortened: %v", k.limit, err)
	case errors.Is(err, syslog.ErrTooBig):
		return fmt.Sprintf("message too large for %s: %v", k.limit, err)
	}
	return err.Error()
}

// answer reports recs, a run of records in order, as one batch.
func (k *syslogSink) answer(recs []*sysRec, resent int, err error) {
	for _, rec := range recs {
		if err == nil {
			err = rec.failed
		}
	}
	o := bridge.Outcome{Last: recs[len(recs)-1].tag, N: len(recs), Resent: resent, Err: err}
	if err == nil {
		for i, rec := range recs {
			if rec.rejected == "" {
				continue
			}
			env := rec.data
			if !json.Valid(env) {
				env, _ = json.Marshal(string(env))
			}
			k.count++
			o.Rejected = append(o.Rejected, bridge.Rejected{ID: rec.id, Index: i, Envelope: env, Text: rec.rejected, Refused: k.count, By: "syslog output"})
		}
		if len(o.Rejected) < len(recs) {
			k.count++
			o.Sent = k.count // after the batch's refusals: a later record delivered shows they were rare
		}
	}
	k.report(o)
}
