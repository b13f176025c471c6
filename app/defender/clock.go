package defender

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// apiClock follows Microsoft's clock rather than this host's: every reply from the API or
// from Entra ID carries a Date header. Windows end at Microsoft's "now", so a host clock that
// is ahead or behind neither skips alerts nor delays them; a Retry-After date and a
// certificate assertion's nbf/exp are reckoned on the same clock.
//
// The last Date seen is anchored to the monotonic clock, not to the host's wall clock: if the
// wall clock is stepped (NTP, an admin) between two replies, Microsoft's time as known here
// does not jump with it.
type apiClock struct {
	wall func() time.Time     // the host's wall clock (Config.Now)
	mono func() time.Duration // a monotonic clock (time since the client was made)

	mu     sync.Mutex
	date   time.Time     // Microsoft's time at the last reply (Date + half a second)
	dateAt time.Duration // mono() when that reply came
	known  bool
}

func newAPIClock(wall func() time.Time) *apiClock {
	start := time.Now()
	return &apiClock{wall: wall, mono: func() time.Duration { return time.Since(start) }}
}

// observe records the Date header of a reply with the given status. Date has a resolution
// of a second: the server's time lay somewhere in [Date, Date+1s), so the middle is taken.
// Replies that may come from a proxy rather than from Microsoft (407, 5xx: a gateway's own
// error page) are not trusted for the time.
func (c *apiClock) observe(status int, h http.Header) {
	if status == http.StatusProxyAuthRequired || status >= 500 {
		return
	}
	d, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return
	}
	at := c.mono()
	c.mu.Lock()
	c.date, c.dateAt, c.known = d.Add(500*time.Millisecond), at, true
	c.mu.Unlock()
}

// now is Microsoft's time as best known: the last Date plus the monotonic time since. A host
// wall clock within two seconds of that is used as it is: the header cannot tell it apart
// from an exact one, and the host's clock has the finer grain (the window overlap covers far
// more than the difference). Until a reply has been seen, it is the host's clock.
func (c *apiClock) now() time.Time {
	host := c.wall()
	c.mu.Lock()
	date, at, known := c.date, c.dateAt, c.known
	c.mu.Unlock()
	if !known {
		return host
	}
	est := date.Add(c.mono() - at)
	if d := host.Sub(est); d >= -trustHost && d <= trustHost {
		return host
	}
	return est
}

func (c *apiClock) seen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.known
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
		t.clock.observe(resp.StatusCode, resp.Header)
	}
	return resp, err
}

// Now returns Microsoft's current time as this client knows it (the host's clock corrected
// by the Date headers of the replies seen so far).
func (c *Client) Now() time.Time { return c.clock.now() }

// APITime returns Microsoft's current time. Until any reply has been seen it asks Entra ID
// for a token, whose reply carries the time; if no reply says the time, it is the host's.
func (c *Client) APITime(ctx context.Context) (time.Time, error) {
	if !c.clock.seen() {
		if _, _, err := c.tokens.Token(ctx); err != nil {
			return time.Time{}, err
		}
	}
	return c.clock.now(), nil
}
