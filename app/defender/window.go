package defender

import (
	"context"
	"slices"
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
// finds more on a page that came newest first from an API that lists that way, a version
// became visible late: the page is read again (up to maxRereads times in a row; what was
// handed on is then a repeat). Otherwise the API lists by something else: the same page is
// tried against the other keys
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
// KeyAt) covers while the reply comes in that progress's order, then keeps the drop only if the
// dropped versions are all in the checkpoint's Claim (a small record of what the progress
// covered when it was saved); otherwise it reads the page again without dropping. A full
// page's proof then confirms the order.

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

// Progress lets a handler take a Position that includes the alert it was just given.
type Progress struct{ d *drain }

// Position returns the drain's position. It is cheap (no copying): the lists it holds are
// views that the drain never writes over, so a caller may take one after every alert (and
// must not write into them either).
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
		if d.hc == nil {
			d.hc = &handedJSON{}
		}
		pos.hc = handedRef{d.hc, &pos.Handed[0], len(pos.Handed)}
	}
	if d.tie == nil && !d.legacy {
		if d.clog == nil {
			d.claimReset(d.claim)
		}
		// Not a copy of the claim (hundreds of bytes for every alert in flight): the
		// operations so far, which the checkpoint's JSON folds (see claimLog).
		pos.lazy = claimSnap{base: &d.clog.base, ops: d.clog.ops[:len(d.clog.ops):len(d.clog.ops)], log: d.clog}
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
	Links     int    // pages read along @odata.nextLink (links.go)
	Proofs    int    // queries proving what the links may have passed over
	// LinkFallbacks counts chains of links dropped (a link refused or out of order, a proof
	// that came back full): the window went on by filter pages.
	LinkFallbacks int
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
	dl   *dialect // the API's names and limits
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
	hc     *handedJSON // handed's JSON, for positions (handedjson.go)
	shared bool        // a Position holds views of at, keyAt or handed: replace their lists, never reuse

	// claim sums the versions at or keyAt covers (Position.Claim).
	claim  Claim
	clog   *claimLog // claim's changes since its last reset, for positions (see claimLog)
	legacy bool      // the page in flight rests on a checkpoint without Claim: write none until it ends

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

	chain   *chain // the run of linked pages being read (links.go)
	noLinks bool   // a chain failed: this drain reads by filter pages only
	reread  int    // pages in a row read again after their probe failed (order.go)
}

// ReadWindow hands every alert version with lastUpdateTime in [w.From, w.To) to fn, at most
// once per drain, in the API's order. fn may take p.Position() to checkpoint; fn's error stops
// the drain and is returned unchanged.
func (c *Client) ReadWindow(ctx context.Context, w Window, fn func(Alert, *Progress) error) (WindowStats, error) {
	d := &drain{c: c, dl: c.dl, w: w, fn: fn, dec: newDecoder(c.dl), size: c.cfg.PageSize,
		seen: map[key]int64{}, replyIDs: map[string]struct{}{}}
	d.prog.d = d
	d.from = w.From.UTC().Truncate(TimeResolution)
	d.to = w.To.UTC().Truncate(TimeResolution)
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

// addSeen lists k as handed on; along links it lowers the chain's floor (chain.repeat).
func (d *drain) addSeen(k key, created int64) {
	d.seen[k] = created
	if d.chain != nil {
		d.chain.floor = min(d.chain.floor, k.t)
	}
}

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
	d.claimReset(Claim{})
	d.legacy = false
	d.shared = false
	for _, pk := range d.pageKeys {
		if _, ok := d.seen[pk.k]; !ok && !d.proven(pk.k.id, pk.k.t, pk.created) {
			d.addSeen(pk.k, pk.created)
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
	d.handed, d.hc = handed, nil
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
