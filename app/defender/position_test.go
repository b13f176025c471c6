package defender

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// FuzzPosition: a saved position (checkpoint input) either does not parse, or writes back to
// what it reads again as, and resuming from it never panics: it is accepted or refused with an error.
func FuzzPosition(f *testing.F) {
	f.Add([]byte(`{"page":{"upper":"2026-03-01T10:00:00Z","inclusive":true,"done":["a"]},"at":{"upper":"2026-03-01T09:00:00Z"}}`))
	f.Add([]byte(`{"page":{"upper":"2026-03-01T10:00:00Z","inclusive":true},"at":{"upper":"2026-03-01T10:00:00Z","inclusive":true},"tie":{"upper":"2026-03-01T08:00:00.1234567Z","inclusive":true,"done":["b"]},"handed":[["c","2026-03-01T10:00:00Z"]]}`))
	f.Add([]byte(`{"page":{"upper":"2026-03-01T10:00:00Z"},"at":{"upper":"2026-03-01T10:00:00Z"},"key":{"key":"id","asc":true,"id":"da1"},"key_at":{"key":"id","asc":true,"id":"da2"}}`))
	f.Add([]byte(`{"handed":[["\u00e9\"<",  "2026-03-01T10:00:00Z"]]}`))
	withClaim := Position{Page: Cursor{Upper: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		At: Cursor{Upper: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Inclusive: true, Done: []string{"a"}}, Claim: new(Claim)}
	withClaim.Claim.add(keyOf("a", withClaim.At.Upper))
	f.Add(withClaim.appendJSON(nil))
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Position
		if json.Unmarshal(b, &p) != nil {
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("a parsed position does not write: %v", err)
		}
		var q Position
		if err := json.Unmarshal(again, &q); err != nil {
			t.Fatalf("a written position does not parse: %v\n%s", err, again)
		}
		if back, _ := json.Marshal(q); string(back) != string(again) {
			t.Fatalf("round trip changed the position:\n%s\n%s", again, back)
		}
		d := &drain{from: from, to: from.Add(24 * time.Hour), seen: map[key]int64{}}
		d.page = Cursor{Upper: d.to}
		_ = d.resume(&p)
	})
}

// The hand-written encoding writes what encoding/json reads back to the same position, for
// every field (FuzzPosition covers odd inputs; this covers a position with all of them).
func TestPositionJSON(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456700, time.UTC)
	p := Position{
		Page:   Cursor{Upper: at, Inclusive: true, Done: []string{"a", "b"}},
		At:     Cursor{Upper: at.Add(-time.Second), Inclusive: true, Done: []string{"c"}},
		Tie:    &Cursor{Upper: at.Add(-time.Hour), Inclusive: true, Done: []string{"d\"é"}},
		Key:    &KeyCursor{Key: "created", Asc: true, Time: at.Add(-2 * time.Hour), Inclusive: true, Done: []string{"e"}},
		KeyAt:  &KeyCursor{Key: "id", ID: "da<1>"},
		Handed: Versions{{"f", at}, {"g\n", at.Add(time.Minute)}},
	}
	p.Claim = new(Claim)
	for _, id := range []string{"h", "i", "j"} {
		p.Claim.add(keyOf(id, at))
	}
	b := p.appendJSON(nil)
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	var q Position
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Errorf("read back differently:\n%+v\n%+v\n%s", p, q, b)
	}
	// Against encoding/json's own encoding of the same fields (no MarshalJSON on the way).
	type plain Position
	std, _ := json.Marshal(plain(p))
	var r Position
	if err := json.Unmarshal(std, &r); err != nil || !reflect.DeepEqual(r, q) {
		t.Errorf("encoding/json's document reads differently: %v\n%s\n%s", err, std, b)
	}
}

// A position taken during a drain keeps its claim as the log's operations so far; folded
// later, after the drain went on adding (and the log grew into a new array), it is the claim
// as it stood when the position was taken.
func TestLazyClaimIsTheClaimAtThePosition(t *testing.T) {
	d := &drain{}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var snaps []claimSnap
	var want []Claim
	for i := 0; i < 500; i++ {
		k := keyOf(fmt.Sprintf("da%d", i), at.Add(time.Duration(i)*time.Millisecond))
		if i%7 == 3 {
			d.claimSub(k)
		} else {
			d.claimAdd(k)
		}
		if i == 250 {
			d.claimReset(d.claim) // a resume or a commit starts a new log from the claim
		}
		snaps = append(snaps, claimSnap{base: &d.clog.base, ops: d.clog.ops[:len(d.clog.ops):len(d.clog.ops)], log: d.clog})
		want = append(want, d.claim)
	}
	// Folded in the order taken (each fold starts at the memo the one before left), then
	// backwards and in a shuffled order (a memo past a snapshot must not be used for it),
	// and again without the memo.
	order := rand.New(rand.NewPCG(7, 11)).Perm(len(snaps))
	for pass, seq := range [][]int{nil, nil, order, nil} {
		for j := range snaps {
			i := j
			switch {
			case pass == 1:
				i = len(snaps) - 1 - j
			case seq != nil:
				i = seq[j]
			}
			s := snaps[i]
			if pass == 3 {
				s.log = nil
			}
			if got := s.fold(); got != want[i] {
				t.Fatalf("pass %d: position %d folds to a claim of %d versions, want %d (the claim then)", pass, i, got.N, want[i].N)
			}
		}
	}
	p := Position{lazy: snaps[100]}
	var back Position
	if err := json.Unmarshal(p.appendJSON(nil), &back); err != nil || back.Claim == nil || *back.Claim != want[100] {
		t.Fatalf("a lazy claim does not round-trip through JSON: %v", err)
	}
}
