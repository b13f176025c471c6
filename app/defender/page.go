package defender

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Reading one page: hand on what is new, track the progress the reply's order allows, and the
// count probe that proves a page.

type track int

const (
	trackNone track = iota // the reply's versions go to Handed
	trackAt                // progress by lastUpdateTime, newest first (Position.At)
	trackKey               // progress along the key (Position.KeyAt)
)

type reply struct {
	n         int    // versions in the reply
	noCreated bool   // one in range had no alertCreationTime
	more      bool   // the reply named a next page (@odata.nextLink)
	next      string // that page's link
}

// short reports whether the reply held everything its query matched: fewer than top
// versions, and no next page named (Graph may cut a page short and link the rest).
func (r reply) short(top int) bool { return r.n < top && !r.more }

// read runs one query and hands on what is new; d.items receives the distinct versions the
// reply held inside the range (in says which), in reply order.
func (d *drain) read(ctx context.Context, filter string, skip int, in func(it item) bool, tr track) (reply, error) {
	if d.dl.maxSkip > 0 && skip > d.dl.maxSkip {
		return reply{}, &APIError{kind: permanent, api: d.dl.label, Message: fmt.Sprintf("reading %s would need $skip=%d, past the %d this API is relied on to honour", filter, skip, d.dl.maxSkip),
			Hint: "more versions share one update and creation time than $skip can reach; nothing past them was committed: please report this"}
	}
	return d.readQuery(ctx, d.dl.query(filter, d.size, skip, true), in, tr)
}

// readQuery is read with the query already encoded (a page's, or a next page's link).
func (d *drain) readQuery(ctx context.Context, q string, in func(it item) bool, tr track) (reply, error) {
	var r reply
	attempt := 0
	err := d.c.get(ctx, q, func(body io.Reader) error {
		attempt++
		if attempt > 1 { // a retried reply repeats what the cut-off one handed on
			for _, pk := range d.pageKeys {
				d.addSeen(pk.k, pk.created)
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
			if d.chain != nil && tr == trackAt {
				// Along links, a version handed on before is a repeat (a version listed late
				// moves the listing down), not a sign of the order.
				if d.chain.repeat(d, keyOf(f.id, f.lut)) {
					d.st.Repeats++
					return nil
				}
				// A linked page's first version must lie at or below the last page's lowest
				// (the versions the link may have passed over lie between them), and the
				// rest go on newest first.
				if !d.chain.broken && !d.chain.inOrder(d.items, it.lut) {
					d.breakChain()
				}
				if d.chain.broken {
					if !it.above(d.page) {
						return nil
					}
					return d.handOn(raw, f.id, f.lut, it.created, false)
				}
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
				switch {
				case tr == trackAt && d.chain != nil:
					d.chain.advance(f.id, it.lut) // handed on without progress (links.go)
				case tr == trackAt:
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
				case tr == trackKey:
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
			if d.proven(it.id, it.lut, it.created) && (d.chain == nil || tr != trackAt || !it.above(d.page)) {
				return nil
			}
			return d.handOn(raw, f.id, f.lut, it.created, progress)
		})
		r.n, r.more, r.next = n, d.dec.more, d.dec.next
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

// claimHolds reports whether every version the resumed first reply dropped is in the
// checkpoint's claim: if not, the progress claimed more than was handed on.
func (d *drain) claimHolds() bool {
	return d.trustClaim == nil || d.trustClaim.covers(d.dropped)
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
	// Along links seen holds only what the chain handed on, none of it below the chain's floor.
	if len(d.seen) > 0 && (d.chain == nil || k.t >= d.chain.floor) {
		if _, ok := d.seen[k]; ok {
			d.st.Repeats++
			return nil
		}
	}
	if progress {
		d.claimAdd(k)
	}
	if d.w.Delivered != nil && d.w.Delivered(id, t) {
		d.st.Delivered++
		return nil
	}
	if progress {
		d.pageKeys = append(d.pageKeys, pageKey{k, created})
	} else {
		d.addSeen(k, created)
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
	if d.dl.maxSkip > 0 && k > d.dl.maxSkip {
		return false, nil // past the $skip the API is known to honour: no proof either way
	}
	n := 0
	err := d.c.get(ctx, d.dl.query(filter, 1, k, false), func(body io.Reader) error {
		var err error
		n, err = d.dec.decode(body, func([]byte, fields) error { return nil })
		return err
	})
	if err == nil {
		d.st.Probes++
	}
	return n == 0 && !d.dec.more, err
}

func errIgnoresFilter() error { return endpointAlerts.errIgnoresFilter() }

func (dl *dialect) errIgnoresFilter() error {
	return &APIError{kind: permanent, api: dl.label, Message: "a full page held nothing inside the requested range",
		Hint: "the API seems to ignore the " + dl.updated + " filter; please report this"}
}
