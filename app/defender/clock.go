package defender

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// apiClock follows Microsoft's clock rather than this host's: every reply from the API or
// from Entra ID carries a Date header, and the difference between that and the local receipt
// time is the offset to add to the host's clock. Windows end at Microsoft's "now", so a host
// clock that is ahead or behind neither skips alerts nor delays them; a Retry-After date and a
// certificate assertion's nbf/exp are reckoned on the same clock.
type apiClock struct {
	local func() time.Time // the host's clock (Config.Now)

	mu     sync.Mutex
	offset time.Duration // Microsoft's time minus the host's
	known  bool
}

// observe records the Date header of a reply received at the host's time at. Date has a
// resolution of a second: the server's time lay somewhere in [Date, Date+1s), so the middle
// is taken. A host clock within two seconds of that is trusted as it is: the header cannot
// tell it apart from an exact one, and the host's clock has the finer grain (the window
// overlap covers far more than the difference).
func (c *apiClock) observe(h http.Header, at time.Time) {
	d, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return
	}
	off := d.Add(500 * time.Millisecond).Sub(at)
	if off.Abs() <= trustHost {
		off = 0
	}
	c.mu.Lock()
	c.offset, c.known = off, true
	c.mu.Unlock()
}

// now is Microsoft's time as best known: the host's until a reply has been seen.
func (c *apiClock) now() time.Time {
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return c.local().Add(off)
}

func (c *apiClock) skew() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.known
}

// trustHost is how far the host's clock may be from Microsoft's and still be used as it is.
const trustHost = 2 * time.Second

// clockTransport records the Date header of every reply.
type clockTransport struct {
	next  http.RoundTripper
	clock *apiClock
}

func (t *clockTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		t.clock.observe(resp.Header, t.clock.local())
	}
	return resp, err
}

// Now returns Microsoft's current time as this client knows it (the host's clock corrected
// by the Date headers of the replies seen so far).
func (c *Client) Now() time.Time { return c.clock.now() }

// APITime returns Microsoft's current time. Until any reply has been seen it asks Entra ID
// for a token, whose reply carries the time; if no reply says the time, it is the host's.
func (c *Client) APITime(ctx context.Context) (time.Time, error) {
	if _, ok := c.clock.skew(); !ok {
		if _, _, err := c.tokens.Token(ctx); err != nil {
			return time.Time{}, err
		}
	}
	return c.clock.now(), nil
}
