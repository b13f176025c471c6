package defender_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
)

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
	if err := resumeFrom(c, defender.Window{From: from, To: to}, saved, seen); err != nil {
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
		if err := resumeFrom(c, defender.Window{From: from, To: to}, saved, seen); err != nil {
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

// covers accepts a drop only when every dropped version is in the claim; versions of the
// claim the drop lacks (changed since, or past $top) are listed and accepted while few.
func TestClaimCovers(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	set := func(ids ...int) defender.Claim {
		var c defender.Claim
		for _, i := range ids {
			defender.ClaimAdd(&c, fmt.Sprintf("da%018d_%d", i, i), at.Add(time.Duration(i)*time.Millisecond))
		}
		return c
	}
	seq := func(from, to int) []int {
		var s []int
		for i := from; i < to; i++ {
			s = append(s, i)
		}
		return s
	}
	tests := []struct {
		name        string
		claim, drop []int
		want        bool
	}{
		{"both empty", nil, nil, true},
		{"same versions", seq(0, 500), seq(0, 500), true},
		{"one changed since", seq(0, 500), seq(1, 500), true},
		{"ten changed since", seq(0, 500), seq(10, 500), true},
		{"a dropped version never handed on", seq(0, 500), append(seq(0, 500), 9999), false},
		{"one swapped for another", seq(0, 500), append(seq(1, 500), 9999), false},
		{"nothing claimed, one dropped", nil, []int{7}, false},
		{"too many changed to list", seq(0, 500), seq(200, 500), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defender.ClaimCovers(set(tt.claim...), set(tt.drop...)); got != tt.want {
				t.Errorf("covers = %v, want %v", got, tt.want)
			}
		})
	}
	// A foreign version among many common ones, with a few of the claim's gone: never accepted.
	for trial := range 2000 {
		claim := seq(trial*1000, trial*1000+300)
		drop := append(seq(trial*1000+trial%7, trial*1000+300), 1_000_000_000+trial)
		if defender.ClaimCovers(set(claim...), set(drop...)) {
			t.Fatalf("trial %d: a drop holding a version the claim lacks was accepted", trial)
		}
	}
}

// (b) A stable newest-first API; the drain crashes in the middle of its second page; before the
// resume one alert it already handed on (covered by At) is updated out of the window, as
// alerts are all the time. Nothing was lost and the order is stable, but the dropped versions
// no longer match the Claim, so the resume re-reads the page and re-sends its covered prefix.
func TestClaimUpdateBetweenCrashAndResume(t *testing.T) {
	for _, update := range []bool{false, true} {
		t.Run(fmt.Sprintf("update=%v", update), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{Seed: 3})
			now := time.Now().UTC().Truncate(time.Second)
			srv.AddAlerts(3000, spread(now, 3000))
			srv.SetOrder(defendertest.NewestFirst)
			from, to := now.Add(-25*time.Hour), now
			c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
			seen := map[version]int{}
			var got []version
			saved := crashAt(t, c, defender.Window{From: from, To: to}, 1500, seen, &got)
			if update { // the 1,200th alert read (handed on, covered by At) changes
				srv.UpdateAt([]string{got[1199].id}, time.Now())
			}
			if err := resumeFrom(c, defender.Window{From: from, To: to}, saved, seen); err != nil {
				t.Fatal(err)
			}
			if len(seen) != 3000 {
				t.Errorf("read %d distinct, want 3000", len(seen))
			}
			if d := repeats(seen); d != 0 {
				t.Errorf("%d versions re-sent after the resume in a stable order, want 0", d)
			}
		})
	}
}
