package defender

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The checkpointed position of a drain, its hand-written JSON encoding, and a drain's resume
// from it.

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
	// Gaps and ChainAt are read, never written: earlier builds wrote them along next links
	// (links.go), with At and Claim that a resume then trusted. Such a position resumes from
	// Page, trusting only Handed.
	Gaps    []Span    `json:"gaps,omitempty"`
	ChainAt *Cursor   `json:"chain_at,omitempty"`
	lazy    claimSnap // a position taken during a drain: its claim, folded when needed
	hc      handedRef // and Handed's JSON, shared with the drain's other positions
}

// claimOf is the position's claim: Claim as read, or the one a drain's position folds.
func (p Position) claimOf() *Claim {
	if p.Claim != nil {
		return p.Claim
	}
	if p.lazy.base != nil {
		c := p.lazy.fold()
		return &c
	}
	return nil
}

// MarshalJSON writes the position as appendJSON does.
func (p Position) MarshalJSON() ([]byte, error) { return p.appendJSON(nil), nil }

// AppendJSON appends the position's compact JSON to b: what MarshalJSON writes, for a caller
// that would otherwise pay encoding/json's second pass over it.
func (p Position) AppendJSON(b []byte) []byte { return p.appendJSON(b) }

// appendJSON appends the position's JSON to b, the same document encoding/json would write
// but without reflection or a second pass: a pump saves a position after every confirmed
// batch, and inside a tie group or an unordered window it lists thousands of versions.
func (p Position) appendJSON(b []byte) []byte {
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
		if p.hc.holds(p.Handed) {
			b = p.hc.c.appendTo(b, p.Handed)
		} else {
			b = p.Handed.appendJSON(b)
		}
	}
	if c := p.claimOf(); c != nil {
		b = append(b, `,"claim":`...)
		b = c.appendJSON(b)
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

// resume sets the drain up to continue from a checkpoint's position (nil: from the start).
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
	if len(p.Gaps) > 0 || p.ChainAt != nil {
		return nil // progress along next links, as earlier builds wrote it: read from Page again
	}
	if pc := p.claimOf(); pc != nil {
		c := *pc
		d.claimReset(c)
		d.trustClaim = &c
	} else {
		d.legacy = true
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
							d.claimSub(k)       // now Handed's: a later resume must not count it twice
							d.trustClaim.sub(k) // an exact record: not part of what the drop must match
							if d.restored == nil {
								d.restored = map[key]struct{}{}
							}
							d.restored[k] = struct{}{}
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
