package defender_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"ta-defender-alerts/app/defender"
)

// Crash-and-resume helpers for the tests of resumed drains.

// crashAt reads the window until the stop-th alert handed on, saving the position (as JSON,
// as the pump saves it) after every alert, as a pump that confirms each one does; it returns
// the last position saved.
func crashAt(t *testing.T, c *defender.Client, w defender.Window, stop int, seen map[version]int, got *[]version) []byte {
	return crashEvery(t, c, w, stop, 1, seen, got)
}

// crashEvery is crashAt for a pump that confirms batches of every alerts: the position is
// saved after each batch (nil if none was confirmed before the stop).
func crashEvery(t *testing.T, c *defender.Client, w defender.Window, stop, every int, seen map[version]int, got *[]version) []byte {
	t.Helper()
	saved, _ := crashActing(t, c, w, stop, every, seen, func(a defender.Alert, _ int) {
		if got != nil {
			*got = append(*got, version{a.ID, a.LastUpdate})
		}
	})
	return saved
}

// crashActing is crashEvery that calls act with each alert and its number (from 1) before the
// position is saved, and also returns the stopped drain's counts.
func crashActing(t *testing.T, c *defender.Client, w defender.Window, stop, every int, seen map[version]int,
	act func(a defender.Alert, n int)) ([]byte, defender.WindowStats) {
	t.Helper()
	errStop := errors.New("crash")
	var saved []byte
	n := 0
	st, err := c.ReadWindow(context.Background(), w, func(a defender.Alert, p *defender.Progress) error {
		seen[version{a.ID, a.LastUpdate}]++
		n++
		act(a, n)
		if n%every == 0 {
			var err error
			if saved, err = json.Marshal(p.Position()); err != nil {
				return err
			}
		}
		if n == stop {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("stop at %d: err = %v", stop, err)
	}
	return saved, st
}

// resumeFrom reads w again from the saved position (nil: from the start), counting what it
// hands on.
func resumeFrom(c *defender.Client, w defender.Window, saved []byte, seen map[version]int) error {
	_, err := resumeStats(c, w, saved, seen)
	return err
}

func resumeStats(c *defender.Client, w defender.Window, saved []byte, seen map[version]int) (defender.WindowStats, error) {
	if saved != nil {
		w.Resume = new(defender.Position)
		if err := json.Unmarshal(saved, w.Resume); err != nil {
			return defender.WindowStats{}, err
		}
	}
	return c.ReadWindow(context.Background(), w, func(a defender.Alert, _ *defender.Progress) error {
		seen[version{a.ID, a.LastUpdate}]++
		return nil
	})
}

func repeats(seen map[version]int) int {
	d := 0
	for _, k := range seen {
		d += k - 1
	}
	return d
}
