package defender

import (
	"net/http"
	"testing"
	"time"
)

// Microsoft's time is anchored to the monotonic clock: a host wall clock stepped between two
// replies (NTP correcting it, an admin) does not move it, and a gateway's own error page
// does not set it.
func TestAPIClockIgnoresWallClockSteps(t *testing.T) {
	base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	wall := base.Add(-15 * time.Minute) // the host runs 15 minutes behind
	var mono time.Duration
	c := &apiClock{wall: func() time.Time { return wall.Add(mono) }, mono: func() time.Duration { return mono }}
	h := http.Header{"Date": {base.Format(http.TimeFormat)}}
	c.observe(200, h)
	mono += 10 * time.Second
	if got, want := c.now(), base.Add(10*time.Second+500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("now = %v, want %v", got, want)
	}
	// NTP steps the host forward to the right time; no reply has come since.
	wall = base
	mono += 5 * time.Second
	if got, want := c.now(), base.Add(15*time.Second); got.Sub(want).Abs() > 600*time.Millisecond {
		t.Errorf("after the host's clock was stepped: now = %v, want about %v", got, want)
	}
	// Now it agrees within two seconds: the host's own, finer, clock is used.
	if got := c.now(); !got.Equal(wall.Add(mono)) {
		t.Errorf("a host within two seconds: now = %v, want the host's %v", got, wall.Add(mono))
	}
	// A proxy's 502 page with its own Date does not set the time.
	c.observe(502, http.Header{"Date": {base.Add(time.Hour).Format(http.TimeFormat)}})
	c.observe(407, http.Header{"Date": {base.Add(time.Hour).Format(http.TimeFormat)}})
	if got := c.now(); got.Sub(base.Add(15*time.Second)).Abs() > 2*time.Second {
		t.Errorf("a gateway's Date moved the clock to %v", got)
	}
}
