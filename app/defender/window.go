package defender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// How a window is read, and what that rests on.
//
// The Alert API documents no order for its pages and no $orderby, $count or nextLink: only
// $filter, $top, $skip and $expand. So the drain trusts a reply only for what a query proves:
//
//   - A reply shorter than $top holds everything its filter matched when it was answered (a
//     snapshot proof).
//   - A count probe, $filter=F&$skip=k&$top=1, comes back empty exactly when the API holds at
//     most k versions matching F. After a full page, with k the page's versions that lie in F,
//     an empty probe proves that the page held every version in F, whatever the API's order.
//
// The drain pages by lastUpdateTime, newest first, each page below the last one's lowest time,
// and after each full page probes (lowest, upper]: one small call per full page. If a probe
// finds more, the API lists by something else: the same page is tried against the other keys
// it is sorted by (alertCreationTime, id, lastUpdateTime ascending) with the same kind of
// probe, and the rest of the window is paged along the first key a probe confirms. If none
// holds (no stable order), the rest is cut into lastUpdateTime ranges small enough to come
// back in one short reply each, sized by count probes and the times seen so far. More than a
// page of versions at one lastUpdateTime (a bulk action) is read apart by alertCreationTime
// the same ways; more than a page sharing both times is read by $skip passes until a count
// probe proves the group complete, or the drain stops with an error naming the window.
//
// What this relies on: the $filter comparisons, $skip and $top behave as documented;
// lastUpdateTime only moves forward, so an alert changed during a drain leaves the window
// upward (its new version is the next window's); alertCreationTime and id never change, and
// alertCreationTime is set on every alert when it is used as a key.
//
// The residual race: a count probe counts what the API holds when it answers. If, between a
// page and its probe, versions seen on the page leave the probed range (updated) while as
// many versions never seen stay in it, the probe comes back empty although the page missed
// them. That needs an API whose order is not the one being checked (when the API does list in
// the order checked, the page missed nothing) and updates landing on the page in the moment
// between two calls, as many as there are unseen versions. The count probe that ends a tie
// group's $skip passes has the same limit. Short replies (the snapshot proof) have none.
//
// A resumed drain repeats the page in flight and drops what the checkpoint's progress (At,
// KeyAt) covers while the reply comes in that progress's order; a full page's proof then
// confirms the order. A short reply is not probed: there, a version the saved page did not
// show could be dropped only if every version that page showed with a lower lastUpdateTime
// has left the range since (been updated), for in the same order they come before it and
// break the order the drop rests on.

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

// Cursor bounds the part of a window still to read along one time, newest first: versions
// newer than Upper are done; so are those at Upper when Inclusive is false, or whose id is in
// Done when it is true. Position.Page is a Cursor over lastUpdateTime, Position.Tie one over
// alertCreationTime.
type Cursor struct {
	Upper     time.Time `json:"upper"`
	Inclusive bool      `json:"inclusive,omitempty"`
	Done      []string  `json:"done,omitempty"`
}

func (c Cursor) clone() Cursor {
	c.Done = append([]string(nil), c.Done...)
	return c
}

func (c Cursor) view() Cursor {
	c.Done = c.Done[:len(c.Done):len(c.Done)]
	return c
}

// KeyCursor bounds, inside the lastUpdateTime range Position.Page leaves, the part still to
// read along the key the API was found to list by. Versions ahead of the bound in the API's
// order are done (above it for a descending key, below it for an ascending one); at the bound,
// those whose id is in Done when Inclusive is true, all of them when it is false.
type KeyCursor struct {
	Key       string    `json:"key"`                 // "created" (alertCreationTime), "id" or "lut" (lastUpdateTime)
	Asc       bool      `json:"asc,omitempty"`       // the API lists the lowest values first
	Time      time.Time `json:"time,omitempty"`      // the bound, for created and lut
	ID        string    `json:"id,omitempty"`        // the bound, for id
	Inclusive bool      `json:"inclusive,omitempty"` // the bound's own value is still to read, but for Done
	Done      []string  `json:"done,omitempty"`
}

func (k *KeyCursor) clone() *KeyCursor {
	if k == nil {
		return nil
	}
	c := *k
	c.Done = append([]string(nil), k.Done...)
	return &c
}

// AlertVersion names one version: its id and lastUpdateTime. It is written as ["id","time"].
type AlertVersion struct {
	ID         string
	LastUpdate time.Time
}

// MarshalJSON writes ["id","time"].
func (v AlertVersion) MarshalJSON() ([]byte, error) { return v.appendJSON(nil), nil }

func (v AlertVersion) appendJSON(b []byte) []byte {
	b = append(b, '[')
	b = appendJSONString(b, v.ID)
	b = append(b, ',')
	b = appendTimeJSON(b, v.LastUpdate)
	return append(b, ']')
}

// Versions is a list of versions, written in one piece: a pump saves a position after every
// confirmed batch, and inside a tie group or an unordered window the list is long.
type Versions []AlertVersion

// MarshalJSON writes [["id","time"],…].
func (vs Versions) MarshalJSON() ([]byte, error) {
	if vs == nil {
		return []byte("null"), nil
	}
	return vs.appendJSON(make([]byte, 0, 2+len(vs)*64)), nil
}

func (vs Versions) appendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = v.appendJSON(b)
	}
	return append(b, ']')
}

func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// UnmarshalJSON reads ["id","time"].
func (v *AlertVersion) UnmarshalJSON(b []byte) error {
	var a [2]string
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, a[1])
	if err != nil || a[0] == "" {
		return errors.New(`a handed-on version is not ["id","time"]`)
	}
	v.ID, v.LastUpdate = a[0], t.UTC()
	return nil
}

// Position is how far a drain of one window got, for a checkpoint. A version is done when
// Page covers it; or, inside a tie group (Tie set: the versions at exactly Page.Upper, read
// apart by alertCreationTime), when Tie covers its alertCreationTime; or, while the rest of
// the window is read along another key, when Key covers it; or when Handed lists it. At and
// KeyAt are how far the hand-over got within the page in flight (for lastUpdateTime and for
// Key): a resumed drain repeats that page's query, drops what they cover while the reply
// comes in their order, and keeps that only if Claim (what the progress covers) matches what
// it dropped and the page's proof then holds.
//
// The format only grew: a position written before Tie, Key, KeyAt and Handed existed (Page
// and At) reads and resumes as it did.
type Position struct {
	Page   Cursor     `json:"page"`
	At     Cursor     `json:"at"`
	Tie    *Cursor    `json:"tie,omitempty"`
	Key    *KeyCursor `json:"key,omitempty"`
	KeyAt  *KeyCursor `json:"key_at,omitempty"`
	Handed Versions   `json:"handed,omitempty"`
	Claim  *Claim     `json:"claim,omitempty"` // nil: a position written before Claim existed
}

// MarshalJSON writes the position as AppendJSON does.
func (p Position) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// AppendJSON appends the position's JSON to b, the same document encoding/json would write
// but without reflection or a second pass: a pump saves a position after every confirmed
// batch, and inside a tie group or an unordered window it lists thousands of versions.
func (p Position) AppendJSON(b []byte) []byte {
	b = append(b, `{"page":`...)
	b = p.Page.appendJSON(b)
	b = append(b, `,"at":`...)
	b = p.At.appendJSON(b)
	if p.Tie != nil {
		b = append(b, `,"tie":`...)
		b = p.Tie.appendJSON(b)
	}
	if p.Key != nil {
		b = append(b, `,"key":`...)
		b = p.Key.appendJSON(b)
	}
	if p.KeyAt != nil {
		b = append(b, `,"key_at":`...)
		b = p.KeyAt.appendJSON(b)
	}
	if len(p.Handed) > 0 {
		b = append(b, `,"handed":`...)
		b = p.Handed.appendJSON(b)
	}
	if p.Claim != nil {
		b = append(b, `,"claim":`...)
		b = p.Claim.appendJSON(b)
	}
	return append(b, '}')
}

func (c Cursor) appendJSON(b []byte) []byte {
	b = append(b, `{"upper":`...)
	b = appendTimeJSON(b, c.Upper)
	if c.Inclusive {
		b = append(b, `,"inclusive":true`...)
	}
	if len(c.Done) > 0 {
		b = append(b, `,"done":`...)
		b = appendStrings(b, c.Done)
	}
	return append(b, '}')
}

func (k *KeyCursor) appendJSON(b []byte) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, k.Key)
	if k.Asc {
		b = append(b, `,"asc":true`...)
	}
	if !k.Time.IsZero() {
		b = append(b, `,"time":`...)
		b = appendTimeJSON(b, k.Time)
	}
	if k.ID != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, k.ID)
	}
	if k.Inclusive {
		b = append(b, `,"inclusive":true`...)
	}
	if len(k.Done) > 0 {
		b = append(b, `,"done":`...)
		b = appendStrings(b, k.Done)
	}
	return append(b, '}')
}

func appendTimeJSON(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString quotes s as encoding/json does (alert ids are plain ASCII; anything else
// takes the careful path).
func appendJSONString(b []byte, s string) []byte {
	if !plainASCII(s) {
		q, _ := json.Marshal(s) // a string always encodes
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Progress lets a handler take a Position that includes the alert it was just given.
type Progress struct{ d *drain }

// Position returns the drain's position. It is cheap (no copying): the lists it holds are
// views that the drain never writes over, so a caller may take one after every alert.
func (p *Progress) Position() Position {
	d := p.d
	d.shared = true
	pos := Position{Page: d.page.view(), At: d.at.view()}
	if d.tie != nil {
		t := d.tie.view()
		pos.Tie = &t
	}
	if d.key != nil {
		k, ka := *d.key, *d.keyAt
		k.Done = k.Done[:len(k.Done):len(k.Done)]
		ka.Done = ka.Done[:len(ka.Done):len(ka.Done)]
		pos.Key, pos.KeyAt = &k, &ka
	}
	if len(d.handed) > 0 {
		pos.Handed = d.handed[:len(d.handed):len(d.handed)]
	}
	if d.tie == nil {
		c := d.claim
		pos.Claim = &c
	}
	return pos
}

// WindowStats counts one drain.
type WindowStats struct {
	Calls     int    // API calls (including retries)
	Pages     int    // page queries answered
	Probes    int    // count probes answered ($top=1)
	Alerts    int    // versions handed on
	Delivered int    // versions dropped as delivered by earlier drains
	Repeats   int    // versions dropped as already handed on in this drain
	Unordered bool   // the API did not list by newest lastUpdateTime: see By
	By        string // what the rest of the window was read along, when not lastUpdateTime
	TieGroups int    // timestamps shared by a full page of alerts, read apart
}

type key struct {
	id string
	t  int64
}

func keyOf(id string, t time.Time) key { return key{id, t.UnixNano()} }

// item is what a page query keeps of each version in its range, for the proofs that follow.
type item struct {
	id      string
	lut     int64
	created int64 // 0: none
}

type pageKey struct {
	k       key
	created int64
}

// drain reads one window.
type drain struct {
	c    *Client
	w    Window
	from time.Time
	to   time.Time
	size int // $top
	fn   func(Alert, *Progress) error
	prog Progress
	dec  *pageDecoder
	st   WindowStats

	// What queries have proven done (Position.Page, Tie, Key). Replaced, never changed in place.
	page Cursor
	tie  *Cursor
	key  *KeyCursor
	// Hand-over progress within the page in flight (Position.At, KeyAt); Done only grows, or
	// is replaced.
	at    Cursor
	keyAt *KeyCursor // set when key is
	// handed lists versions handed on that nothing above covers (Position.Handed).
	handed Versions
	shared bool // a Position holds views of at, keyAt or handed: replace their lists, never reuse

	// claim sums the versions at or keyAt covers (Position.Claim).
	claim Claim

	// The first page of a resumed drain drops what the checkpoint's At or KeyAt covers, and
	// keeps that only if what it dropped matches the checkpoint's claim (see Claim).
	trustAt    *Cursor
	trustKey   *KeyCursor
	trusted    bool             // and it did
	trustClaim *Claim           // the checkpoint's claim (nil: an older checkpoint, trusted as before)
	dropped    Claim            // what the first reply showed of the versions the claim covers
	restored   map[key]struct{} // the checkpoint's Handed: never part of its claim

	seen     map[key]int64 // handed on (this drain or the checkpoint's) and not proven done; → alertCreationTime
	pageKeys []pageKey     // handed on during the page in flight, covered by at or keyAt
	items    []item        // the page in flight's distinct versions in range, in reply order
	replyIDs map[string]struct{}
}

// ReadWindow hands every alert version with lastUpdateTime in [w.From, w.To) to fn, at most
// once per drain, in the API's order. fn may take p.Position() to checkpoint; fn's error stops
// the drain and is returned unchanged.
func (c *Client) ReadWindow(ctx context.Context, w Window, fn func(Alert, *Progress) error) (WindowStats, error) {
	d := &drain{c: c, w: w, fn: fn, dec: newPageDecoder(), size: c.cfg.PageSize,
		seen: map[key]int64{}, replyIDs: map[string]struct{}{}}
	d.prog.d = d
	d.from = w.From.UTC().Truncate(Tick)
	d.to = w.To.UTC().Truncate(Tick)
	before := c.Stats().Calls
	if !d.from.Before(d.to) {
		return d.st, nil
	}
	d.page = Cursor{Upper: d.to}
	if err := d.resume(w.Resume); err != nil {
		return d.st, err
	}
	err := d.run(ctx)
	st := d.st
	st.Calls = c.Stats().Calls - before
	return st, err
}

func (d *drain) resume(p *Position) error {
	d.at = d.page.clone()
	if p == nil {
		return nil
	}
	bad := func(what string) error {
		return fmt.Errorf("the saved position %s; the checkpoint is inconsistent", what)
	}
	if p.Page.Upper.After(d.to) || p.Page.Upper.Before(d.from) || p.At.Upper.After(p.Page.Upper) {
		return bad("lies outside its window")
	}
	if p.Tie != nil && !p.Page.Inclusive {
		return bad("reads a tie group at a time it also marks done")
	}
	if p.KeyAt != nil && (p.Key == nil || p.KeyAt.Key != p.Key.Key || p.KeyAt.Asc != p.Key.Asc) {
		return bad("has page progress along another key than its own")
	}
	if p.Key != nil && !validKey(p.Key.Key) {
		return bad("names an unknown key " + strconv.Quote(p.Key.Key))
	}
	d.page = p.Page.clone()
	if p.Tie != nil {
		t := p.Tie.clone()
		d.tie = &t
	}
	d.key = p.Key.clone()
	for _, v := range p.Handed {
		k := keyOf(v.ID, v.LastUpdate)
		if _, ok := d.seen[k]; !ok {
			d.seen[k] = 0
			d.handed = append(d.handed, AlertVersion{v.ID, v.LastUpdate.UTC()})
		}
	}
	d.at = d.page.clone()
	d.keyAt = d.key.clone()
	if d.tie != nil {
		return nil // progress inside a tie group is in Tie and Handed
	}
	if p.Claim != nil {
		c := *p.Claim
		d.claim, d.trustClaim = c, &c
	}
	if len(p.Handed) > 0 {
		d.restored = make(map[key]struct{}, len(p.Handed))
		for _, v := range p.Handed {
			d.restored[keyOf(v.ID, v.LastUpdate)] = struct{}{}
		}
	}
	if d.key == nil {
		at := p.At.clone()
		d.at = at.clone()
		d.trustAt = &at
		if at.Inclusive { // the ids listed at its bound were handed on, in any order
			for _, id := range at.Done {
				if k := keyOf(id, at.Upper); !d.proven(id, k.t, 0) {
					if _, ok := d.seen[k]; !ok {
						d.seen[k] = 0
						d.handed = append(d.handed, AlertVersion{id, at.Upper.UTC()})
						if d.trustClaim != nil {
							d.claim.sub(k) // now Handed's: a later resume must not count it twice
						}
					}
				}
			}
		}
	} else if p.KeyAt != nil {
		d.keyAt = p.KeyAt.clone()
		d.trustKey = p.KeyAt.clone()
	}
	return nil
}

func (d *drain) run(ctx context.Context) error {
	if d.tie != nil { // resumed inside a tie group
		if err := d.tieGroup(ctx, d.page.Upper); err != nil {
			return err
		}
		d.setPage(Cursor{Upper: d.page.Upper})
	}
	for {
		var done bool
		var err error
		if d.key == nil {
			done, err = d.byLastUpdate(ctx)
		} else {
			done, err = d.byKey(ctx)
		}
		if err != nil || done {
			return err
		}
	}
}

// --- the proven cursors ---

func (d *drain) setPage(c Cursor) { d.page, d.tie = c, nil; d.commit() }
func (d *drain) setTie(c Cursor)  { d.tie = &c; d.commit() }
func (d *drain) setKey(k *KeyCursor) {
	d.key = k
	d.commit()
}

// commit follows a move of the proven cursors: the page's progress ends, and what they now
// cover is dropped from the lists of versions handed on.
func (d *drain) commit() {
	d.at = d.page.clone()
	d.keyAt = d.key.clone()
	d.claim = Claim{}
	d.shared = false
	for _, pk := range d.pageKeys {
		if _, ok := d.seen[pk.k]; !ok && !d.proven(pk.k.id, pk.k.t, pk.created) {
			d.seen[pk.k] = pk.created
		}
	}
	d.pageKeys = d.pageKeys[:0]
	handed := make(Versions, 0, len(d.seen))
	for k, created := range d.seen {
		if d.proven(k.id, k.t, created) {
			delete(d.seen, k)
			continue
		}
		handed = append(handed, AlertVersion{k.id, time.Unix(0, k.t).UTC()})
	}
	d.handed = handed
}

// proven reports whether the proven cursors cover a version (created 0: unknown).
func (d *drain) proven(id string, lut, created int64) bool {
	t := time.Unix(0, lut).UTC()
	if coversTime(d.page, id, t) {
		return true
	}
	if d.tie != nil && d.page.Inclusive && t.Equal(d.page.Upper) && created != 0 && coversCreated(*d.tie, id, created) {
		return true
	}
	return d.key != nil && d.key.covers(item{id, lut, created})
}

func coversTime(c Cursor, id string, t time.Time) bool {
	if t.After(c.Upper) {
		return true
	}
	if t.Equal(c.Upper) {
		return !c.Inclusive || slices.Contains(c.Done, id)
	}
	return false
}

// coversCreated: a tie cursor whose Upper is zero has proven nothing yet.
func coversCreated(c Cursor, id string, created int64) bool {
	if c.Upper.IsZero() {
		return false
	}
	return coversTime(c, id, time.Unix(0, created).UTC())
}

// --- keys ---

func validKey(k string) bool { return k == "created" || k == "id" || k == "lut" }

var keyProps = map[string]string{"created": "alertCreationTime", "id": "id", "lut": "lastUpdateTime"}

// cmpValue compares it's value of key k with the bound (t or s).
func cmpValue(k string, it item, t int64, s string) int {
	switch k {
	case "id":
		return strings.Compare(it.id, s)
	case "lut":
		return cmpInt(it.lut, t)
	default:
		return cmpInt(it.created, t)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ahead reports whether a comes before b in the order (k, asc).
func ahead(k string, asc bool, a, b item) bool {
	var c int
	switch k {
	case "id":
		c = strings.Compare(a.id, b.id)
	case "lut":
		c = cmpInt(a.lut, b.lut)
	default:
		c = cmpInt(a.created, b.created)
	}
	if asc {
		return c < 0
	}
	return c > 0
}

func (k *KeyCursor) bound() (int64, string) {
	if k.Key == "id" {
		return 0, k.ID
	}
	return k.Time.UnixNano(), ""
}

// cmp compares it with the bound in the key's order: < 0 ahead of it (done), > 0 behind.
func (k *KeyCursor) cmp(it item) int {
	t, s := k.bound()
	c := cmpValue(k.Key, it, t, s)
	if k.Asc {
		return c
	}
	return -c
}

func (k *KeyCursor) covers(it item) bool {
	if k.Key == "created" && it.created == 0 {
		return false
	}
	switch c := k.cmp(it); {
	case c < 0:
		return true
	case c == 0:
		return !k.Inclusive || slices.Contains(k.Done, it.id)
	}
	return false
}

// keyLiteral is a value of the key as $filter writes it.
func keyLiteral(k string, t int64, s string) string {
	if k == "id" {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return FilterTime(time.Unix(0, t))
}

// filter is the clause that keeps what the cursor has not covered (Done aside).
func (k *KeyCursor) filter() string {
	t, s := k.bound()
	op := map[[2]bool]string{{false, true}: " le ", {false, false}: " lt ", {true, true}: " ge ", {true, false}: " gt "}[[2]bool{k.Asc, k.Inclusive}]
	return keyProps[k.Key] + op + keyLiteral(k.Key, t, s)
}

// keyDef is a candidate order: the keys an API might list by, other than newest
// lastUpdateTime first.
type keyDef struct {
	key string
	asc bool
	by  string
}

var candidates = []keyDef{
	{"created", false, "alertCreationTime, newest first"},
	{"created", true, "alertCreationTime, oldest first"},
	{"id", true, "id"},
	{"id", false, "id, descending"},
	{"lut", true, "lastUpdateTime, oldest first"},
}

func (kd keyDef) value(it item) (int64, string) {
	switch kd.key {
	case "id":
		return 0, it.id
	case "lut":
		return it.lut, ""
	}
	return it.created, ""
}

// edge finds the last value of items in the order kd, how many items are strictly ahead of it,
// and the ids at it.
func (kd keyDef) edge(items []item) (e item, k int, at []string) {
	e = items[0]
	for _, it := range items[1:] {
		if ahead(kd.key, kd.asc, e, it) {
			e = it
		}
	}
	for _, it := range items {
		if ahead(kd.key, kd.asc, it, e) {
			k++
		} else {
			at = append(at, it.id)
		}
	}
	return e, k, at
}

// aheadFilter is the clause for "ahead of e".
func (kd keyDef) aheadFilter(e item) string {
	t, s := kd.value(e)
	op := " gt "
	if kd.asc {
		op = " lt "
	}
	return keyProps[kd.key] + op + keyLiteral(kd.key, t, s)
}

func (kd keyDef) cursor(e item, at []string) *KeyCursor {
	t, s := kd.value(e)
	k := &KeyCursor{Key: kd.key, Asc: kd.asc, ID: s}
	if kd.key == "id" {
		return k // ids are unique: the one at the edge is done
	}
	k.Time = time.Unix(0, t).UTC()
	k.Inclusive, k.Done = true, at
	return k
}

func (kd keyDef) sorted(items []item) bool {
	for i := 1; i < len(items); i++ {
		if ahead(kd.key, kd.asc, items[i], items[i-1]) {
			return false
		}
	}
	return true
}

// --- reading pages ---

type track int

const (
	trackNone track = iota // the reply's versions go to Handed
	trackAt                // progress by lastUpdateTime, newest first (Position.At)
	trackKey               // progress along the key (Position.KeyAt)
)

type reply struct {
	n         int  // versions in the reply
	noCreated bool // one in range had no alertCreationTime
}

// read runs one query and hands on what is new; d.items receives the distinct versions the
// reply held inside the range (in says which), in reply order.
func (d *drain) read(ctx context.Context, filter string, skip int, in func(it item) bool, tr track) (reply, error) {
	q := d.encode(filter, d.size, skip, true)
	var r reply
	attempt := 0
	err := d.c.get(ctx, q, func(body io.Reader) error {
		attempt++
		if attempt > 1 { // a retried reply repeats what the cut-off one handed on
			for _, pk := range d.pageKeys {
				d.seen[pk.k] = pk.created
			}
		}
		d.dropped = Claim{}
		r = reply{}
		d.items = d.items[:0]
		inOrder := true
		mapped := false // replyIDs holds the ids of d.items
		n, err := d.dec.decode(body, func(raw []byte, f fields) error {
			it := item{id: f.id, lut: f.lut.UnixNano()}
			if !f.created.IsZero() {
				it.created = f.created.UnixNano()
			}
			if !in(it) {
				return nil // outside the query's range: a later query owns it
			}
			if inOrder && len(d.items) > 0 {
				prev := d.items[len(d.items)-1]
				switch tr {
				case trackAt:
					inOrder = it.lut <= prev.lut
				case trackKey:
					inOrder = !ahead(d.key.Key, d.key.Asc, it, prev)
				}
			}
			// A version the reply already held is not counted or handed on twice. While the
			// reply is newest first, a repeat sits among the last few at the same time.
			if !mapped && tr == trackAt && inOrder {
				for i, k := len(d.items)-1, 0; i >= 0 && d.items[i].lut == it.lut; i, k = i-1, k+1 {
					if d.items[i].id == it.id {
						return nil
					}
					if k == 16 {
						mapped = true
						break
					}
				}
			} else if !mapped {
				mapped = true
			}
			if mapped {
				if len(d.replyIDs) == 0 {
					for _, x := range d.items {
						d.replyIDs[x.id] = struct{}{}
					}
				}
				if _, dup := d.replyIDs[it.id]; dup {
					return nil
				}
				d.replyIDs[it.id] = struct{}{}
			}
			if it.created == 0 {
				r.noCreated = true
			}
			d.items = append(d.items, it)
			progress := false
			if inOrder {
				// The checkpoint's progress: the ids it lists at its bound were handed on (an
				// exact record); what lies ahead of the bound was, if the API still lists in
				// this order, which the page's proof will tell (trusted).
				switch tr {
				case trackAt:
					d.advanceAt(f.id, f.lut)
					progress = true
					if c := d.trustAt; c != nil {
						if f.lut.After(c.Upper) || f.lut.Equal(c.Upper) && !c.Inclusive {
							d.trusted = true
							d.drop(it)
							return nil
						}
						if f.lut.Equal(c.Upper) && c.Inclusive && slices.Contains(c.Done, f.id) {
							d.drop(it) // (and it is in seen: handOn drops it)
						}
					}
				case trackKey:
					d.advanceKey(it)
					progress = true
					if c := d.trustKey; c != nil && c.covers(it) {
						d.drop(it)
						if c.cmp(it) == 0 && c.Inclusive {
							d.pageKeys = append(d.pageKeys, pageKey{keyOf(f.id, f.lut), it.created})
						} else {
							d.trusted = true
						}
						return nil
					}
				}
			}
			if d.proven(it.id, it.lut, it.created) {
				return nil
			}
			return d.handOn(raw, f.id, f.lut, it.created, progress)
		})
		r.n = n
		clear(d.replyIDs)
		return err
	})
	if err == nil {
		d.st.Pages++
	}
	return r, err
}

// drop counts a version of the resumed first reply that the checkpoint's progress covers,
// unless the claim leaves it out: listed in Handed, or covered by the proven cursors.
func (d *drain) drop(it item) {
	k := key{it.id, it.lut}
	if _, ok := d.restored[k]; !ok && !d.proven(it.id, it.lut, it.created) {
		d.dropped.add(k)
	}
}

// claimHolds reports whether what the resumed first reply dropped is what the checkpoint's
// progress covered: if not, the progress claimed more than was handed on.
func (d *drain) claimHolds() bool {
	return d.trustClaim == nil || *d.trustClaim == d.dropped
}

// advanceAt moves the lastUpdateTime progress down to (id, t). An id met twice at the same
// time (a retried reply) is listed twice; covers does not mind.
func (d *drain) advanceAt(id string, t time.Time) {
	switch {
	case t.Before(d.at.Upper) || (t.Equal(d.at.Upper) && !d.at.Inclusive):
		d.at.Upper, d.at.Inclusive = t, true
		if d.shared {
			d.at.Done, d.shared = make([]string, 0, 4), false
			d.keyAt = d.keyAt.clone()
		}
		d.at.Done = append(d.at.Done[:0], id)
	case t.Equal(d.at.Upper):
		d.at.Done = append(d.at.Done, id)
	}
}

// advanceKey moves the key progress to it.
func (d *drain) advanceKey(it item) {
	k := d.keyAt
	switch c := k.cmp(it); {
	case c > 0 || (c == 0 && !k.Inclusive):
		if k.Key == "id" {
			k.ID = it.id // ids are unique: exclusive
			return
		}
		k.Time, k.Inclusive = time.Unix(0, it.lut).UTC(), true
		if k.Key == "created" {
			k.Time = time.Unix(0, it.created).UTC()
		}
		if d.shared {
			k.Done, d.shared = make([]string, 0, 4), false
			d.at = d.at.clone()
		}
		k.Done = append(k.Done[:0], it.id)
	case c == 0:
		k.Done = append(k.Done, it.id)
	}
}

// handOn gives a version to the handler unless this drain handed it on before. progress: the
// page's progress cursor covers it.
func (d *drain) handOn(raw []byte, id string, t time.Time, created int64, progress bool) error {
	k := keyOf(id, t)
	if len(d.seen) > 0 {
		if _, ok := d.seen[k]; ok {
			d.st.Repeats++
			return nil
		}
	}
	if progress {
		d.claim.add(k)
	}
	if d.w.Delivered != nil && d.w.Delivered(id, t) {
		d.st.Delivered++
		return nil
	}
	if progress {
		d.pageKeys = append(d.pageKeys, pageKey{k, created})
	} else {
		d.seen[k] = created
		d.handed = append(d.handed, AlertVersion{id, t})
	}
	d.st.Alerts++
	if err := d.fn(Alert{ID: id, LastUpdate: t, Raw: raw}, &d.prog); err != nil {
		return &callbackError{err}
	}
	return nil
}

// holdsAtMost is the count probe: does the API hold at most k versions matching filter?
func (d *drain) holdsAtMost(ctx context.Context, filter string, k int) (bool, error) {
	n := 0
	err := d.c.get(ctx, d.encode(filter, 1, k, false), func(body io.Reader) error {
		var err error
		n, err = d.dec.decode(body, func([]byte, fields) error { return nil })
		return err
	})
	if err == nil {
		d.st.Probes++
	}
	return n == 0, err
}

func errIgnoresFilter() error {
	return &APIError{Kind: Permanent, Message: "a full page held nothing inside the requested range",
		Hint: "the API seems to ignore the lastUpdateTime filter; please report this"}
}

// --- newest lastUpdateTime first ---

func (d *drain) pageFilter() string {
	return "lastUpdateTime ge " + FilterTime(d.from) + " and lastUpdateTime" + upperOp(d.page) + FilterTime(d.page.Upper)
}

func upperOp(c Cursor) string {
	if c.Inclusive {
		return " le "
	}
	return " lt "
}

// inPage reports whether a version lies in the range the page query asks for.
func (d *drain) inPage(it item) bool {
	t := time.Unix(0, it.lut).UTC()
	if t.Before(d.from) || t.After(d.page.Upper) {
		return false
	}
	return d.page.Inclusive || t.Before(d.page.Upper)
}

// byLastUpdate reads the page below the proven bound and proves it: done when the window is.
func (d *drain) byLastUpdate(ctx context.Context) (bool, error) {
	base := d.pageFilter()
	r, err := d.read(ctx, base, 0, d.inPage, trackAt)
	trusted := d.trusted
	d.trustAt, d.trusted, d.restored = nil, false, nil
	if err != nil {
		return false, err
	}
	if trusted && !d.claimHolds() {
		d.commit() // the checkpoint's progress claimed more than was handed on: read again
		return false, nil
	}
	if r.n < d.size {
		return true, nil // a short page held the rest of the window
	}
	if len(d.items) == 0 {
		return false, errIgnoresFilter()
	}
	e, k, atL := keyDef{key: "lut"}.edge(d.items)
	low := time.Unix(0, e.lut).UTC()
	if low.Equal(d.page.Upper) { // a full page at the bound itself: a tie group
		d.commit()
		if trusted {
			return false, nil // the checkpoint's progress above the bound is unproven: read again
		}
		return false, d.tieThenBelow(ctx, low)
	}
	ok, err := d.holdsAtMost(ctx, "lastUpdateTime gt "+FilterTime(low)+" and lastUpdateTime"+upperOp(d.page)+FilterTime(d.page.Upper), k)
	if err != nil {
		return false, err
	}
	if ok {
		if k == 0 { // all at one time
			d.setPage(Cursor{Upper: low, Inclusive: true})
			return false, d.tieThenBelow(ctx, low)
		}
		d.setPage(Cursor{Upper: low, Inclusive: true, Done: atL})
		return false, nil
	}
	// Not listed by lastUpdateTime (or a version became visible late in the range).
	if trusted {
		d.commit() // the checkpoint's progress rested on that order: read the page again
		return false, nil
	}
	kc, err := d.otherKey(ctx, base)
	if err != nil {
		return false, err
	}
	d.st.Unordered = true
	if kc != nil {
		d.setKey(kc)
		return false, nil
	}
	sample := lutSample(d.items)
	d.commit()
	return true, d.bisect(ctx, nil, span{d.from, hiOf(d.page)}, sample)
}

func hiOf(c Cursor) time.Time {
	if c.Inclusive {
		return c.Upper.Add(Tick)
	}
	return c.Upper
}

func lutSample(items []item) []int64 {
	s := make([]int64, len(items))
	for i, it := range items {
		s[i] = it.lut
	}
	return s
}

// otherKey tries the page in d.items against the other orders it is sorted by: the first one
// a count probe confirms becomes the key. At most three probes.
func (d *drain) otherKey(ctx context.Context, base string) (*KeyCursor, error) {
	tries := 0
	for _, kd := range candidates {
		if kd.key == "created" && slices.ContainsFunc(d.items, func(it item) bool { return it.created == 0 }) {
			continue
		}
		if !kd.sorted(d.items) {
			continue
		}
		e, k, at := kd.edge(d.items)
		if k == 0 {
			continue // all at one value: no progress along it
		}
		if tries == 3 {
			break
		}
		tries++
		ok, err := d.holdsAtMost(ctx, base+" and "+kd.aheadFilter(e), k)
		if err != nil {
			return nil, err
		}
		if ok {
			d.st.By = kd.by
			return kd.cursor(e, at), nil
		}
	}
	return nil, nil
}

// --- along another key ---

func (d *drain) byKey(ctx context.Context) (bool, error) {
	base := d.pageFilter() + " and " + d.key.filter()
	in := func(it item) bool {
		if !d.inPage(it) || (d.key.Key == "created" && it.created == 0) {
			return false
		}
		c := d.key.cmp(it)
		return c > 0 || (c == 0 && d.key.Inclusive)
	}
	r, err := d.read(ctx, base, 0, in, trackKey)
	trusted := d.trusted
	d.trustKey, d.trusted, d.restored = nil, false, nil
	if err != nil {
		return false, err
	}
	if trusted && !d.claimHolds() {
		d.commit()
		return false, nil
	}
	if r.n < d.size {
		return true, nil
	}
	if len(d.items) == 0 {
		return false, errIgnoresFilter()
	}
	kd := keyDef{key: d.key.Key, asc: d.key.Asc}
	e, k, at := kd.edge(d.items)
	if k > 0 {
		ok, err := d.holdsAtMost(ctx, base+" and "+kd.aheadFilter(e), k)
		if err != nil {
			return false, err
		}
		if ok {
			d.setKey(kd.cursor(e, at))
			return false, nil
		}
		if trusted {
			d.commit()
			return false, nil
		}
	}
	// The order no longer holds, or more than a page shares one value of the key.
	sample := lutSample(d.items)
	d.commit()
	d.st.By += ", then bisected"
	return true, d.bisect(ctx, nil, span{d.from, hiOf(d.page)}, sample)
}

// --- ranges ---

// span is a half-open range of lastUpdateTime, or of alertCreationTime within a tie group;
// a zero bound is unbounded (alertCreationTime only).
type span struct{ lo, hi time.Time }

func (s span) oneTick() bool { return !s.lo.IsZero() && !s.hi.IsZero() && s.hi.Sub(s.lo) <= Tick }

func (s span) has(t time.Time) bool {
	return (s.lo.IsZero() || !t.Before(s.lo)) && (s.hi.IsZero() || t.Before(s.hi))
}

func (s span) empty() bool { return !s.lo.IsZero() && !s.hi.IsZero() && !s.lo.Before(s.hi) }

// spanFilter is the query of a span (tie nil: of lastUpdateTime), within what the key leaves.
func (d *drain) spanFilter(s span, tie *time.Time) string {
	var f string
	if tie == nil {
		f = "lastUpdateTime ge " + FilterTime(s.lo) + " and lastUpdateTime lt " + FilterTime(s.hi)
	} else {
		f = tieFilter(*tie)
		if !s.lo.IsZero() {
			f += " and alertCreationTime ge " + FilterTime(s.lo)
		}
		if !s.hi.IsZero() {
			f += " and alertCreationTime lt " + FilterTime(s.hi)
		}
	}
	if d.key != nil {
		f += " and " + d.key.filter()
	}
	return f
}

func tieFilter(t time.Time) string {
	return "lastUpdateTime ge " + FilterTime(t) + " and lastUpdateTime lt " + FilterTime(t.Add(Tick))
}

func (d *drain) inKey(it item) bool {
	if d.key == nil {
		return true
	}
	if d.key.Key == "created" && it.created == 0 {
		return false
	}
	c := d.key.cmp(it)
	return c > 0 || (c == 0 && d.key.Inclusive)
}

func (d *drain) inSpan(s span, tie *time.Time) func(it item) bool {
	return func(it item) bool {
		if !d.inKey(it) {
			return false
		}
		t := time.Unix(0, it.lut).UTC()
		if tie == nil {
			return s.has(t) && !t.Before(d.from)
		}
		if !t.Equal(*tie) {
			return false
		}
		return it.created == 0 && s.lo.IsZero() && s.hi.IsZero() || it.created != 0 && s.has(time.Unix(0, it.created).UTC())
	}
}

// bisect reads a span of lastUpdateTime (tie nil) or, within the versions at exactly *tie, a
// span of alertCreationTime, in any order. It cuts the span into parts that a count estimate
// and the values seen (sample) say fit in one short reply each, and reads them newest first,
// so that the proven cursor follows. A short reply proves its part; a full one is cut again.
func (d *drain) bisect(ctx context.Context, tie *time.Time, whole span, sample []int64) error {
	if tie == nil && d.st.By == "" {
		d.st.By = "bisection"
	}
	stack, err := d.parts(ctx, whole, tie, sample)
	if err != nil {
		return err
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.empty() {
			continue
		}
		if tie != nil && s.oneTick() { // more than a page sharing both times
			if err := d.skipPasses(ctx, *tie, &s.lo); err != nil {
				return err
			}
			d.doneDownTo(tie, s.lo)
			continue
		}
		r, err := d.read(ctx, d.spanFilter(s, tie), 0, d.inSpan(s, tie), trackNone)
		if err != nil {
			return err
		}
		if r.n < d.size {
			d.doneDownTo(tie, s.lo)
			continue
		}
		if tie == nil && s.oneTick() { // a full page at one lastUpdateTime
			d.setPage(Cursor{Upper: s.lo, Inclusive: true})
			if err := d.tieThenBelow(ctx, s.lo); err != nil {
				return err
			}
			continue
		}
		if tie != nil && r.noCreated {
			// Versions without alertCreationTime cannot be split by it.
			return d.skipPasses(ctx, *tie, nil)
		}
		var sub []int64
		for _, it := range d.items {
			if tie == nil {
				sub = append(sub, it.lut)
			} else if it.created != 0 {
				sub = append(sub, it.created)
			}
		}
		if len(sub) == 0 {
			return errIgnoresFilter()
		}
		more, err := d.parts(ctx, s, tie, sub)
		if err != nil {
			return err
		}
		stack = append(stack, more...)
	}
	return nil
}

// doneDownTo records a part proven: everything from lo up is done.
func (d *drain) doneDownTo(tie *time.Time, lo time.Time) {
	switch {
	case tie == nil:
		d.setPage(Cursor{Upper: lo})
	case !lo.IsZero():
		d.setTie(Cursor{Upper: lo})
	}
}

// parts cuts s, known to hold at least a page, into parts of about three quarters of a page
// each, at the quantiles of sample (the values a full reply showed), oldest first.
func (d *drain) parts(ctx context.Context, s span, tie *time.Time, sample []int64) ([]span, error) {
	n, err := d.estimate(ctx, d.spanFilter(s, tie))
	if err != nil {
		return nil, err
	}
	target := max(d.size*3/4, 1)
	q := min(max((n+target-1)/target, 2), 64)
	sorted := slices.Clone(sample)
	slices.Sort(sorted)
	var cuts []time.Time
	add := func(v int64) {
		t := time.Unix(0, v).UTC().Truncate(Tick)
		if (s.lo.IsZero() || t.After(s.lo)) && (s.hi.IsZero() || t.Before(s.hi)) {
			cuts = append(cuts, t)
		}
	}
	for j := 1; j < q; j++ {
		v := sorted[len(sorted)*j/q]
		add(v)
		// A value that fills more than a part's share gets a part of its own.
		first, _ := slices.BinarySearch(sorted, v)
		last, _ := slices.BinarySearch(sorted, v+1)
		if (last-first)*q > len(sorted) {
			add(v + int64(Tick))
		}
	}
	if len(cuts) == 0 { // every value seen at the span's low end
		add(sorted[0] + int64(Tick))
	}
	if len(cuts) == 0 && !s.lo.IsZero() && !s.hi.IsZero() {
		cuts = append(cuts, s.lo.Add(s.hi.Sub(s.lo)/2).Truncate(Tick))
	}
	slices.SortFunc(cuts, func(a, b time.Time) int { return a.Compare(b) })
	cuts = slices.CompactFunc(cuts, func(a, b time.Time) bool { return a.Equal(b) })
	out := make([]span, 0, len(cuts)+1)
	lo := s.lo
	for _, c := range cuts {
		if c.After(lo) || lo.IsZero() {
			out = append(out, span{lo, c})
			lo = c
		}
	}
	return append(out, span{lo, s.hi}), nil
}

// estimate bounds from above how many versions match filter, which a full reply showed to be
// at least a page: count probes at doubling $skip, then one halving step.
func (d *drain) estimate(ctx context.Context, filter string) (int, error) {
	lo, hi := d.size, 2*d.size
	for {
		ok, err := d.holdsAtMost(ctx, filter, hi)
		if err != nil {
			return 0, err
		}
		if ok {
			break
		}
		lo, hi = hi, 2*hi
		if hi > 64*d.size {
			return hi, nil
		}
	}
	if mid := (lo + hi) / 2; mid > lo {
		ok, err := d.holdsAtMost(ctx, filter, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		}
	}
	return hi, nil
}

// --- tie groups ---

// tieThenBelow reads the tie group at t (Page is at t, inclusive), then marks t done.
func (d *drain) tieThenBelow(ctx context.Context, t time.Time) error {
	if err := d.tieGroup(ctx, t); err != nil {
		return err
	}
	d.setPage(Cursor{Upper: t})
	return nil
}

// tieGroup reads every version at exactly t, more than a page of them, apart by
// alertCreationTime (bulk updates touch alerts created at different times): newest created
// first while the API lists them so and a probe confirms it, else by bisection.
func (d *drain) tieGroup(ctx context.Context, t time.Time) error {
	d.st.TieGroups++
	if d.tie == nil {
		d.setTie(Cursor{})
	}
	for {
		f := tieFilter(t)
		hi := time.Time{}
		if !d.tie.Upper.IsZero() {
			f += " and alertCreationTime" + upperOp(*d.tie) + FilterTime(d.tie.Upper)
			hi = hiOf(*d.tie)
		}
		if d.key != nil {
			f += " and " + d.key.filter()
		}
		in := func(it item) bool {
			if !d.inKey(it) || it.lut != t.UnixNano() {
				return false
			}
			if d.tie.Upper.IsZero() {
				return true
			}
			c := time.Unix(0, it.created).UTC()
			return it.created != 0 && (c.Before(d.tie.Upper) || c.Equal(d.tie.Upper) && d.tie.Inclusive)
		}
		r, err := d.read(ctx, f, 0, in, trackNone)
		if err != nil || r.n < d.size {
			return err
		}
		if len(d.items) == 0 {
			return errIgnoresFilter()
		}
		if r.noCreated {
			return d.skipPasses(ctx, t, nil)
		}
		kd := keyDef{key: "created"}
		if kd.sorted(d.items) {
			if e, k, at := kd.edge(d.items); k > 0 {
				ok, err := d.holdsAtMost(ctx, f+" and "+kd.aheadFilter(e), k)
				if err != nil {
					return err
				}
				if ok {
					d.setTie(Cursor{Upper: time.Unix(0, e.created).UTC(), Inclusive: true, Done: at})
					continue
				}
			}
		}
		var sample []int64
		for _, it := range d.items {
			sample = append(sample, it.created)
		}
		return d.bisect(ctx, &t, span{time.Time{}, hi}, sample)
	}
}

// maxStalls is how many $skip passes in a row may find nothing new while a count probe says
// the group holds more, before the drain gives up on proving it complete. A pass reads the
// group in random pages when the API orders its ties anew on every call; missing one given
// version in ten such passes in a row is about as likely as 1 in 20,000.
const maxStalls = 10

// skipPasses is the last resort for more than a page of versions that share lastUpdateTime t
// (and alertCreationTime *c, when set): $skip pages through the group, pass after pass, as
// long as passes find versions not seen before (an alert updated meanwhile leaves the group
// and shifts the later pages; an API may order ties anew on every call). A pass that finds
// nothing new ends it if a count probe proves that the group holds no more than the versions
// seen; if the probe keeps finding more, the drain stops with an error naming the window, and
// the proven cursors never pass the group.
func (d *drain) skipPasses(ctx context.Context, t time.Time, c *time.Time) error {
	f := tieFilter(t)
	if c != nil {
		f += " and alertCreationTime ge " + FilterTime(*c) + " and alertCreationTime lt " + FilterTime(c.Add(Tick))
	} else if d.tie != nil && !d.tie.Upper.IsZero() {
		f += " and alertCreationTime" + upperOp(*d.tie) + FilterTime(d.tie.Upper)
	}
	if d.key != nil {
		f += " and " + d.key.filter()
	}
	in := func(it item) bool {
		if !d.inKey(it) || it.lut != t.UnixNano() {
			return false
		}
		return c == nil || it.created == c.UnixNano()
	}
	group := map[string]struct{}{}
	stalls, passes := 0, 0
	for {
		passes++
		found := 0
		for skip := 0; ; skip += d.size {
			r, err := d.read(ctx, f, skip, in, trackNone)
			if err != nil {
				return err
			}
			for _, it := range d.items {
				if _, ok := group[it.id]; !ok {
					group[it.id] = struct{}{}
					found++
				}
			}
			// Stop at a short page, or once past every version known (an API may ignore $skip).
			if r.n < d.size || skip+d.size > len(group) {
				break
			}
		}
		if found > 0 {
			stalls = 0
			continue
		}
		ok, err := d.holdsAtMost(ctx, f, len(group))
		if err != nil || ok {
			return err
		}
		if stalls++; stalls == maxStalls {
			what := "lastUpdateTime " + FilterTime(t)
			if c != nil {
				what += " and alertCreationTime " + FilterTime(*c)
			}
			return &APIError{Kind: Permanent,
				Message: fmt.Sprintf("reading the window [%s, %s): the versions sharing %s cannot be proven complete: after %d $skip passes the API still holds more than the %d read",
					FilterTime(d.from), FilterTime(d.to), what, passes, len(group)),
				Hint: "nothing past them was committed, and the next run reads them again; if this persists, the API's $skip paging does not list every version of the group: please report this"}
		}
	}
}

// --- queries ---

func (d *drain) encode(filter string, top, skip int, expand bool) string {
	var b strings.Builder
	b.WriteString("$filter=")
	b.WriteString(escape(filter))
	b.WriteString("&$top=")
	b.WriteString(strconv.Itoa(top))
	if skip > 0 {
		b.WriteString("&$skip=")
		b.WriteString(strconv.Itoa(skip))
	}
	if expand {
		b.WriteString("&$expand=evidence")
	}
	return b.String()
}

// escape encodes a query value with %20 for spaces, which every OData server reads.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
