package defender

import (
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Alert is one alert as the API sent it.
type Alert struct {
	ID         string
	LastUpdate time.Time
	// Raw is the alert object's exact bytes. It is only valid during the handler call: copy it
	// to keep it.
	Raw []byte
}

// Window is a drain request: every alert version whose lastUpdateTime is in [From, To).
type Window struct {
	From, To time.Time
	// Resume continues a drain of the same window that stopped part-way (a checkpoint).
	Resume *Position
	// Delivered reports versions handed on by earlier drains (the overlap): they are dropped.
	Delivered func(id string, lastUpdate time.Time) bool
}

// Cursor bounds the part of a window still to read: versions newer than Upper are done; so
// are those at Upper when Inclusive is false, or whose id is in Done when it is true.
type Cursor struct {
	Upper     time.Time `json:"upper"`
	Inclusive bool      `json:"inclusive,omitempty"`
	Done      []string  `json:"done,omitempty"`
}

func (c Cursor) clone() Cursor {
	c.Done = append([]string(nil), c.Done...)
	return c
}

// Position is how far a drain of one window got, for a checkpoint. Page is where the page in
// progress began (a bound checked against the API's order); At is how far the hand-over got
// within it. A resumed drain repeats the page query and drops what At covers.
type Position struct {
	Page Cursor `json:"page"`
	At   Cursor `json:"at"`
}

// Progress lets a handler take a Position that includes the alert it was just given.
type Progress struct{ d *drain }

// Position returns the drain's position. It is cheap (no copying): the lists it holds are
// views that the drain never writes over, so a caller may take one after every alert.
func (p *Progress) Position() Position {
	d := p.d
	d.atShared = true
	return Position{Page: d.page.view(), At: d.at.view()}
}

func (c Cursor) view() Cursor {
	c.Done = c.Done[:len(c.Done):len(c.Done)]
	return c
}

// WindowStats counts one drain.
type WindowStats struct {
	Calls     int  // API calls (including retries)
	Pages     int  // page queries answered
	Alerts    int  // versions handed on
	Delivered int  // versions dropped as delivered by earlier drains
	Repeats   int  // versions dropped as already handed on in this drain
	Unordered bool // the API's order could not be used; the window was bisected
	TieGroups int  // timestamps shared by a full page of alerts, read apart
}

type key struct {
	id string
	t  int64
}

func keyOf(id string, t time.Time) key { return key{id, t.UnixNano()} }

// drain reads one window.
type drain struct {
	c    *Client
	w    Window
	from time.Time
	to   time.Time
	fn   func(Alert, *Progress) error
	prog Progress
	dec  *pageDecoder
	st   WindowStats

	page     Cursor  // bound of the query in progress (checked); replaced, never changed in place
	at       Cursor  // hand-over progress within it; Done only grows, or is replaced
	atShared bool    // a Position holds a view of at.Done: replace it rather than reuse it
	resumeAt *Cursor // first page of a resumed drain: At of the checkpoint (unchecked)

	pageKeys []key            // versions handed on during the page query in progress
	seen     map[key]struct{} // versions handed on that no checked cursor covers yet
	sample   []int64          // times seen in the last range reply (split points)
}

// ReadWindow hands every alert version with lastUpdateTime in [w.From, w.To) to fn, newest
// first when the API orders its pages (it checks), at most once per drain. fn may take
// p.Position() to checkpoint; fn's error stops the drain and is returned unchanged.
func (c *Client) ReadWindow(ctx context.Context, w Window, fn func(Alert, *Progress) error) (WindowStats, error) {
	d := &drain{c: c, w: w, fn: fn, dec: newPageDecoder()}
	d.prog.d = d
	d.from = w.From.UTC().Truncate(Tick)
	d.to = w.To.UTC().Truncate(Tick)
	before := c.Stats().Calls
	if !d.from.Before(d.to) {
		return d.st, nil
	}
	d.page = Cursor{Upper: d.to}
	if w.Resume != nil {
		if p := w.Resume; p.Page.Upper.After(d.to) || p.Page.Upper.Before(d.from) || p.At.Upper.After(p.Page.Upper) {
			return d.st, errors.New("the saved position lies outside its window; the checkpoint is inconsistent")
		}
		d.page = w.Resume.Page.clone()
		at := w.Resume.At.clone()
		d.at = at.clone()
		d.resumeAt = &at
	} else {
		d.at = d.page.clone()
	}
	err := d.ordered(ctx)
	st := d.st
	st.Calls = c.Stats().Calls - before
	return st, err
}

// ordered pages down through the window by lastUpdateTime, each query bounded above by where
// the previous page ended, as long as every page comes newest first.
func (d *drain) ordered(ctx context.Context) error {
	for {
		r, err := d.readOrderedPage(ctx)
		if err != nil {
			return err
		}
		d.resumeAt = nil
		if !r.sorted {
			return d.bisect(ctx)
		}
		if r.n < d.c.cfg.PageSize {
			return nil // the page held the rest of the window
		}
		if r.first.Equal(r.last) {
			// A full page of one timestamp: no bound can split it.
			if err := d.tieGroup(ctx, r.last); err != nil {
				return err
			}
			d.setChecked(Cursor{Upper: r.last})
			continue
		}
		if d.at.Upper.Equal(d.page.Upper) && len(d.at.Done) == len(d.page.Done) {
			return &APIError{Kind: Permanent, Message: "a full page brought nothing below the $filter bound",
				Hint: "the API seems to ignore the lastUpdateTime filter; please report this"}
		}
		d.setChecked(d.at)
	}
}

// inQuery reports whether t lies in the range the current page query asked for.
func (d *drain) inQuery(t time.Time) bool {
	if t.Before(d.from) || t.After(d.page.Upper) {
		return false
	}
	return d.page.Inclusive || t.Before(d.page.Upper)
}

// setChecked moves the checked bound (and the progress) to c; the per-page bookkeeping ends.
func (d *drain) setChecked(c Cursor) {
	d.page = c.clone()
	d.at = c.clone()
	d.pageKeys = d.pageKeys[:0]
	if len(d.seen) == 0 {
		return
	}
	done := newDoneSet(d.page)
	for k := range d.seen {
		if done.covers(k.id, time.Unix(0, k.t).UTC()) {
			delete(d.seen, k)
		}
	}
}

type pageResult struct {
	n           int
	sorted      bool
	first, last time.Time
}

// readOrderedPage reads the page below d.page, advancing d.at alert by alert while the reply
// stays newest first.
func (d *drain) readOrderedPage(ctx context.Context) (pageResult, error) {
	q := d.query(d.from, d.page, 0)
	skip := newDoneSet(d.page)
	if d.resumeAt != nil {
		skip = newDoneSet(*d.resumeAt)
	}
	var r pageResult
	attempt := 0
	err := d.c.get(ctx, q, func(body io.Reader) error {
		attempt++
		if attempt > 1 {
			d.rememberPageKeys() // a retried reply repeats what the cut-off one handed on
		}
		r = pageResult{sorted: true}
		var prev time.Time
		_, err := d.dec.decode(body, func(raw []byte, f fields) error {
			id, t := f.id, f.lut
			if r.n == 0 {
				r.first = t
			}
			r.n++
			r.last = t
			if r.n > 1 && t.After(prev) {
				r.sorted = false
			}
			prev = t
			if !d.inQuery(t) {
				return nil // outside the query's range: a later query owns it
			}
			if r.sorted {
				d.advance(id, t)
			}
			if skip.covers(id, t) && (r.sorted || d.resumeAt == nil) {
				return nil
			}
			return d.handOn(raw, id, t)
		})
		return err
	})
	if err != nil {
		return r, err
	}
	d.st.Pages++
	return r, nil
}

// advance moves the progress cursor down to (id, t). An id met twice at the same time (a
// retried reply) is listed twice; covers does not mind.
func (d *drain) advance(id string, t time.Time) {
	switch {
	case t.Before(d.at.Upper) || (t.Equal(d.at.Upper) && !d.at.Inclusive):
		d.at.Upper, d.at.Inclusive = t, true
		if d.atShared {
			d.at.Done, d.atShared = make([]string, 0, 4), false
		}
		d.at.Done = append(d.at.Done[:0], id)
	case t.Equal(d.at.Upper):
		d.at.Done = append(d.at.Done, id)
	}
}

// doneSet indexes a cursor's Done list for a page's worth of covers checks.
type doneSet struct {
	c   Cursor
	ids map[string]struct{}
}

func newDoneSet(c Cursor) doneSet {
	ds := doneSet{c: c, ids: make(map[string]struct{}, len(c.Done))}
	for _, id := range c.Done {
		ds.ids[id] = struct{}{}
	}
	return ds
}

func (ds doneSet) covers(id string, t time.Time) bool {
	if t.After(ds.c.Upper) {
		return true
	}
	if t.Equal(ds.c.Upper) {
		if !ds.c.Inclusive {
			return true
		}
		_, ok := ds.ids[id]
		return ok
	}
	return false
}

// handOn gives a version to the handler unless it was handed on before.
func (d *drain) handOn(raw []byte, id string, t time.Time) error {
	k := keyOf(id, t)
	if d.seen != nil {
		if _, ok := d.seen[k]; ok {
			d.st.Repeats++
			return nil
		}
	}
	if d.w.Delivered != nil && d.w.Delivered(id, t) {
		d.st.Delivered++
		return nil
	}
	d.pageKeys = append(d.pageKeys, k)
	d.st.Alerts++
	if err := d.fn(Alert{ID: id, LastUpdate: t, Raw: raw}, &d.prog); err != nil {
		return &callbackError{err}
	}
	return nil
}

func (d *drain) rememberPageKeys() {
	if d.seen == nil {
		d.seen = make(map[key]struct{}, len(d.pageKeys))
	}
	for _, k := range d.pageKeys {
		d.seen[k] = struct{}{}
	}
	d.pageKeys = d.pageKeys[:0]
}

// bisect reads the rest of the window without relying on any order.
func (d *drain) bisect(ctx context.Context) error {
	d.st.Unordered = true
	d.rememberPageKeys()
	d.at = d.page.clone() // progress inside an unordered page proves nothing
	hi := d.page.Upper
	if d.page.Inclusive {
		hi = hi.Add(Tick)
	}
	return d.split(ctx, span{d.from, hi}, nil)
}

// span is a half-open time range; a zero bound is unbounded (alertCreationTime only).
type span struct{ lo, hi time.Time }

func (s span) oneTick() bool { return !s.lo.IsZero() && !s.hi.IsZero() && s.hi.Sub(s.lo) <= Tick }

func (s span) has(t time.Time) bool {
	return (s.lo.IsZero() || !t.Before(s.lo)) && (s.hi.IsZero() || t.Before(s.hi))
}

// split reads a span of lastUpdateTime (tie == nil) or, within the versions at exactly *tie,
// a span of alertCreationTime. A reply that is not a full page holds all of its span; a full
// one is cut at the median of the values it showed, that value's tick read on its own. Newer
// parts go first, so that the checked cursor can follow. Versions handed on from full pages
// are remembered until a checked cursor covers them.
func (d *drain) split(ctx context.Context, whole span, tie *time.Time) error {
	stack := []span{whole}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !s.lo.IsZero() && !s.hi.IsZero() && !s.lo.Before(s.hi) {
			continue
		}
		if s.oneTick() && tie != nil {
			if err := d.skipPasses(ctx, *tie, s); err != nil {
				return err
			}
			continue
		}
		r, err := d.readRange(ctx, s, tie, 0)
		if err != nil {
			return err
		}
		if r.n < d.c.cfg.PageSize {
			if tie == nil {
				d.setChecked(Cursor{Upper: s.lo})
			}
			continue
		}
		d.rememberPageKeys()
		if s.oneTick() { // a full page at one lastUpdateTime
			if err := d.tieGroup(ctx, s.lo); err != nil {
				return err
			}
			d.setChecked(Cursor{Upper: s.lo})
			continue
		}
		if tie == nil && len(d.sample) == 0 {
			return &APIError{Kind: Permanent, Message: "a full page held nothing inside the requested range",
				Hint: "the API seems to ignore the lastUpdateTime filter; please report this"}
		}
		if r.noCreated || len(d.sample) == 0 {
			// Versions without alertCreationTime cannot be split by it.
			return d.skipPasses(ctx, *tie, whole)
		}
		// Cut at the median; when the median is the span's lower edge, cut that tick off.
		m := median(d.sample).Truncate(Tick)
		if !s.hi.IsZero() && !m.Before(s.hi) {
			m = s.hi.Add(-Tick)
		}
		if !s.lo.IsZero() && !m.After(s.lo) {
			m = s.lo.Add(Tick)
		}
		stack = append(stack, span{s.lo, m}, span{m, s.hi})
	}
	return nil
}

func median(v []int64) time.Time {
	sorted := append([]int64(nil), v...)
	slices.Sort(sorted)
	return time.Unix(0, sorted[len(sorted)/2]).UTC()
}

type rangeResult struct {
	n         int
	noCreated bool // a version in the tie had no alertCreationTime
}

// readRange reads a span once at $skip and hands on what is new. d.sample receives the values
// (lastUpdateTime, or alertCreationTime within a tie) of the versions in the span.
func (d *drain) readRange(ctx context.Context, s span, tie *time.Time, skip int) (rangeResult, error) {
	q := d.rangeQuery(s, tie, skip)
	done := newDoneSet(d.page)
	var r rangeResult
	attempt := 0
	err := d.c.get(ctx, q, func(body io.Reader) error {
		attempt++
		if attempt > 1 {
			d.rememberPageKeys()
		}
		r = rangeResult{}
		d.sample = d.sample[:0]
		var err error
		r.n, err = d.dec.decode(body, func(raw []byte, f fields) error {
			if tie == nil {
				if !s.has(f.lut) || f.lut.Before(d.from) {
					return nil
				}
				d.sample = append(d.sample, f.lut.UnixNano())
			} else {
				if !f.lut.Equal(*tie) {
					return nil
				}
				if f.created.IsZero() {
					r.noCreated = true
				} else if !s.has(f.created) {
					return nil
				} else {
					d.sample = append(d.sample, f.created.UnixNano())
				}
			}
			if done.covers(f.id, f.lut) {
				return nil
			}
			return d.handOn(raw, f.id, f.lut)
		})
		return err
	})
	if err == nil {
		d.st.Pages++
	}
	return r, err
}

// tieGroup reads every version at exactly t when a full page shares it, by splitting on
// alertCreationTime (bulk updates touch alerts created at different times).
func (d *drain) tieGroup(ctx context.Context, t time.Time) error {
	d.st.TieGroups++
	d.rememberPageKeys()
	return d.split(ctx, span{}, &t)
}

// skipPasses is the last resort for more than a page of versions that share both times:
// $skip pages, repeated until a whole pass finds nothing new, since an alert updated meanwhile
// leaves the group and shifts the later pages.
func (d *drain) skipPasses(ctx context.Context, t time.Time, s span) error {
	const maxPasses = 4
	for pass := 0; pass < maxPasses; pass++ {
		before := d.st.Alerts
		for skip := 0; ; skip += d.c.cfg.PageSize {
			r, err := d.readRange(ctx, s, &t, skip)
			if err != nil {
				return err
			}
			d.rememberPageKeys()
			if r.n < d.c.cfg.PageSize {
				break
			}
		}
		if pass > 0 && d.st.Alerts == before {
			return nil
		}
	}
	return nil
}

// rangeQuery builds the query for a span (see split).
func (d *drain) rangeQuery(s span, tie *time.Time, skip int) string {
	var f string
	if tie == nil {
		f = "lastUpdateTime ge " + FilterTime(s.lo) + " and lastUpdateTime lt " + FilterTime(s.hi)
	} else {
		f = "lastUpdateTime ge " + FilterTime(*tie) + " and lastUpdateTime lt " + FilterTime(tie.Add(Tick))
		if !s.lo.IsZero() {
			f += " and alertCreationTime ge " + FilterTime(s.lo)
		}
		if !s.hi.IsZero() {
			f += " and alertCreationTime lt " + FilterTime(s.hi)
		}
	}
	return d.encode(f, skip)
}

// query builds the ordered page query: [lo, upper) or [lo, upper].
func (d *drain) query(lo time.Time, upper Cursor, skip int) string {
	op := " lt "
	if upper.Inclusive {
		op = " le "
	}
	return d.encode("lastUpdateTime ge "+FilterTime(lo)+" and lastUpdateTime"+op+FilterTime(upper.Upper), skip)
}

func (d *drain) encode(filter string, skip int) string {
	var b strings.Builder
	b.WriteString("$filter=")
	b.WriteString(escape(filter))
	b.WriteString("&$top=")
	b.WriteString(strconv.Itoa(d.c.cfg.PageSize))
	if skip > 0 {
		b.WriteString("&$skip=")
		b.WriteString(strconv.Itoa(skip))
	}
	b.WriteString("&$expand=evidence")
	return b.String()
}

// escape encodes a query value with %20 for spaces, which every OData server reads.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
