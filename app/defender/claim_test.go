package defender_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
)

// crashAt reads the window until the stop-th alert handed on, saving the position after
// every alert (as a pump that confirms each one); it returns the saved JSON.
func crashAt(t *testing.T, c *defender.Client, w defender.Window, stop int, seen map[version]int, got *[]version) []byte {
	t.Helper()
	errStop := errors.New("crash")
	var saved []byte
	n := 0
	_, err := c.ReadWindow(context.Background(), w, func(a defender.Alert, p *defender.Progress) error {
		seen[version{a.ID, a.LastUpdate}]++
		if got != nil {
			*got = append(*got, version{a.ID, a.LastUpdate})
		}
		n++
		var err error
		if saved, err = json.Marshal(p.Position()); err != nil {
			return err
		}
		if n == stop {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("stop at %d: err = %v", stop, err)
	}
	return saved
}

func repeats(seen map[version]int) int {
	d := 0
	for _, k := range seen {
		d += k - 1
	}
	return d
}

// (b) An old checkpoint (no Claim) is resumed; the resumed drain crashes again inside the same
// page and saves positions that now carry a Claim counting only what the resume handed on,
// while At still covers what the old checkpoint covered. The second resume finds the drop
// larger than the claim and re-reads the page, although the API lists in a stable order.
func TestClaimOldCheckpointResumedTwice(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	now := time.Now().UTC().Truncate(time.Second)
	srv.AddAlerts(3000, spread(now, 3000))
	from, to := now.Add(-25*time.Hour), now
	c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
	seen := map[version]int{}
	var got []version
	crashAt(t, c, defender.Window{From: from, To: to}, 1200, seen, &got)
	pageStart, at := got[999], got[1199]
	old := fmt.Sprintf(`{"page":{"upper":%q,"inclusive":true,"done":[%q]},"at":{"upper":%q,"inclusive":true,"done":[%q]}}`,
		pageStart.t.Format(time.RFC3339Nano), pageStart.id, at.t.Format(time.RFC3339Nano), at.id)
	var p defender.Position
	if err := json.Unmarshal([]byte(old), &p); err != nil {
		t.Fatal(err)
	}
	// Resume 1 crashes after 100 more alerts, still in the second page.
	saved := crashAt(t, c, defender.Window{From: from, To: to, Resume: &p}, 100, seen, nil)
	t.Logf("position after the first resume: ...%s", saved[max(0, len(saved)-120):])
	resume := new(defender.Position)
	if err := json.Unmarshal(saved, resume); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadWindow(context.Background(), defender.Window{From: from, To: to, Resume: resume}, func(a defender.Alert, _ *defender.Progress) error {
		seen[version{a.ID, a.LastUpdate}]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3000 {
		t.Errorf("read %d distinct, want 3000", len(seen))
	}
	if d := repeats(seen); d != 0 {
		t.Errorf("%d versions re-sent after the second resume in a stable order, want 0", d)
	}
}

// (b) Newest first, ties in a new order on every call (NewestFirstTies). A page ends inside a
// group of versions sharing one time T; the drain stops after handing on one of them (x), so
// At = T inclusive, Done [x], and the Claim counts x. The resumed reply lists the group in
// another order and x falls beyond $top: the drop lacks x, the claim check fails, and the
// page is read again without dropping although the checkpoint was exact.
func TestClaimTieAtBoundCutByTop(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	from, to := now.Add(-2*time.Hour), now
	total := 0
	for seed := uint64(1); seed <= 20; seed++ {
		srv := newServer(t, defendertest.Options{Seed: seed})
		tie := now.Add(-time.Hour)
		srv.AddAlerts(6, func(int) time.Time { return tie.Add(-time.Hour / 2) })
		ids := srv.IDs()
		srv.UpdateAt(ids, tie) // six versions at T, created at another time
		srv.AddAlerts(1, func(int) time.Time { return now.Add(-time.Minute) })
		srv.SetOrder(defendertest.NewestFirstTies)
		c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 4 })
		seen := map[version]int{}
		saved := crashAt(t, c, defender.Window{From: from, To: to}, 2, seen, nil) // the newest, then x at T
		resume := new(defender.Position)
		if err := json.Unmarshal(saved, resume); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadWindow(context.Background(), defender.Window{From: from, To: to, Resume: resume}, func(a defender.Alert, _ *defender.Progress) error {
			seen[version{a.ID, a.LastUpdate}]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 7 {
			t.Errorf("seed %d: read %d distinct, want 7", seed, len(seen))
		}
		if d := repeats(seen); d != 0 {
			total += d
			t.Logf("seed %d: %d re-sent (position %s)", seed, d, saved)
		}
	}
	if total != 0 {
		t.Errorf("%d versions re-sent after resumes from exact positions, want 0", total)
	}
}
