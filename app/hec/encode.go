package hec

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Record is one event to deliver.
type Record struct {
	Time  time.Time
	Event []byte // a JSON object, sent as is (copied into the batch)
	ID    string // the caller's name for it (an alert id), for rejections
	// Sourcetype, if set, replaces the client's (Config.Sourcetype) for this event: a feed
	// whose items hold others (incidents and their alerts) sends two kinds of event.
	Sourcetype string
}

// Batch is records encoded as one HEC request body: concatenated envelopes, one per line.
// Once compressed for sending, a batch holds only the compressed body while it waits for its
// ack (memory stays bounded however slow acks are); the rare partial refusal inflates it again.
type Batch struct {
	body   []byte // the envelopes; nil while only gz is held
	gz     []byte // the whole batch compressed, once sent
	size   int    // len of the uncompressed body
	starts []int  // offset of each record's envelope in body
	ids    []string
	full   bool   // sealed because it reached a limit: a backlog is being drained
	order  uint64 // its place in the order of Submit
	// Tag is the caller's, carried to the Outcome (e.g. the checkpoint position it completes).
	Tag      any
	onTicket func(*Batch, Ticket)
	onTaken  func(*Batch)
}

// Len is the number of records.
func (b *Batch) Len() int { return len(b.starts) }

// Size is the uncompressed body size in bytes.
func (b *Batch) Size() int {
	if b.body != nil {
		return len(b.body)
	}
	return b.size
}

// Body returns the uncompressed request body (for tests, golden files and the raw relay).
func (b *Batch) Body() []byte { return b.raw() }

// raw returns the uncompressed body, inflating the compressed one if only it is held.
func (b *Batch) raw() []byte {
	if b.body == nil && b.gz != nil {
		zr, err := gzip.NewReader(bytes.NewReader(b.gz))
		if err == nil {
			b.body, err = io.ReadAll(zr)
		}
		if err != nil {
			panic("hec: a batch compressed here does not inflate: " + err.Error()) // our own bytes
		}
	}
	return b.body
}

// record returns record i's envelope and the event inside it.
func (b *Batch) record(i int) []byte {
	body := b.raw()
	end := len(body)
	if i+1 < len(b.starts) {
		end = b.starts[i+1]
	}
	return body[b.starts[i]:end]
}

// part is records [lo, hi) of a batch.
type part struct {
	b      *Batch
	lo, hi int
}

func (p part) n() int { return p.hi - p.lo }

func (p part) body() []byte {
	body := p.b.raw()
	end := len(body)
	if p.hi < len(p.b.starts) {
		end = p.b.starts[p.hi]
	}
	return body[p.b.starts[p.lo]:end]
}

// whole reports whether the part is its whole batch.
func (p part) whole() bool { return p.lo == 0 && p.hi == p.b.Len() }

// encoder writes envelopes: time, host, source, sourcetype, index, then the event object.
type encoder struct {
	meta []byte // ,"host":…,"source":…,"sourcetype":…[,"index":…],"event":

	host, source, index string
	mu                  sync.Mutex
	typed               map[string][]byte // meta with another sourcetype (Record.Sourcetype)
}

// newEncoder prepares the metadata every envelope carries.
func newEncoder(host, source, sourcetype, index string) *encoder {
	return &encoder{meta: envelopeMeta(host, source, sourcetype, index), host: host, source: source, index: index}
}

// metaFor is the metadata of r's envelope.
func (e *encoder) metaFor(r Record) []byte {
	if r.Sourcetype == "" {
		return e.meta
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.typed[r.Sourcetype]
	if !ok {
		if e.typed == nil {
			e.typed = map[string][]byte{}
		}
		m = envelopeMeta(e.host, e.source, r.Sourcetype, e.index)
		e.typed[r.Sourcetype] = m
	}
	return m
}

func envelopeMeta(host, source, sourcetype, index string) []byte {
	meta := []byte(`,"host":`)
	meta = appendJSONString(meta, host)
	meta = append(meta, `,"source":`...)
	meta = appendJSONString(meta, source)
	meta = append(meta, `,"sourcetype":`...)
	meta = appendJSONString(meta, sourcetype)
	if index != "" {
		meta = append(meta, `,"index":`...)
		meta = appendJSONString(meta, index)
	}
	meta = append(meta, `,"event":`...)
	return meta
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // cannot fail for a string
	return append(dst, b...)
}

// Append adds r to b.
func (e *encoder) Append(b *Batch, r Record) {
	b.starts = append(b.starts, len(b.body))
	b.ids = append(b.ids, r.ID)
	b.body = append(b.body, `{"time":`...)
	b.body = appendEpoch(b.body, r.Time)
	b.body = append(b.body, e.metaFor(r)...)
	b.body = append(b.body, r.Event...)
	b.body = append(b.body, "}\n"...)
}

// envelopeSize is what Append will add for r.
func (e *encoder) envelopeSize(r Record) int {
	return len(`{"time":`) + 20 + len(e.metaFor(r)) + len(r.Event) + 2
}

// appendEpoch writes t as epoch seconds with microseconds (Splunk keeps microseconds).
func appendEpoch(dst []byte, t time.Time) []byte {
	us := t.UnixMicro()
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	dst = strconv.AppendInt(dst, sec, 10)
	dst = append(dst, '.')
	f := strconv.AppendInt(make([]byte, 0, 8), frac, 10)
	for i := len(f); i < 6; i++ {
		dst = append(dst, '0')
	}
	return append(dst, f...)
}

// Batcher fills batches up to a size and a count. A record larger than the size limit still
// goes, alone in its batch.
type Batcher struct {
	enc      *encoder
	maxBytes int
	maxCount int
	cur      *Batch
	bodies   *sync.Pool // of *[]byte: bodies of batches now held compressed
}

// NewBatcher makes a batcher for the client's limits and metadata.
func (c *Client) NewBatcher() *Batcher {
	return &Batcher{enc: c.enc, maxBytes: c.cfg.BatchBytes, maxCount: c.cfg.BatchCount, bodies: &c.bodies}
}

// Add appends r and returns a batch that is now full (sealed), or nil.
func (bt *Batcher) Add(r Record) *Batch {
	var sealed *Batch
	if bt.cur != nil && (bt.cur.Size()+bt.enc.envelopeSize(r) > bt.maxBytes || bt.cur.Len() >= bt.maxCount) {
		sealed, bt.cur = bt.cur, nil
		sealed.full = true
	}
	if bt.cur == nil {
		want := min(bt.maxBytes+bt.maxBytes/8, bt.enc.envelopeSize(r)*2+bt.maxBytes)
		var body []byte
		if p, ok := bt.bodies.Get().(*[]byte); ok && cap(*p) >= want {
			body = (*p)[:0] // a body given back once its batch was compressed
		} else {
			body = make([]byte, 0, want)
		}
		bt.cur = &Batch{body: body}
	}
	bt.enc.Append(bt.cur, r)
	return sealed
}

// Flush seals the batch being filled, or returns nil if it is empty.
func (bt *Batcher) Flush() *Batch {
	b := bt.cur
	bt.cur = nil
	return b
}

// queued is the number of records waiting in the batch being filled.
func (bt *Batcher) queued() int {
	if bt.cur == nil {
		return 0
	}
	return bt.cur.Len()
}

// NewGzipWriter is the compressor the client uses (fastest level), for tools that post
// batches themselves (the benchmark's raw relay).
func NewGzipWriter(w io.Writer) io.WriteCloser {
	zw, _ := gzip.NewWriterLevel(w, 1)
	return zw
}
