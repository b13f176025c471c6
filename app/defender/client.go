package defender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ta-defender-alerts/app/retry"
)

// Client reads alerts. It is safe for concurrent use, though one drain at a time is the norm.
type Client struct {
	cfg    Config
	dl     *dialect
	ep     Endpoints
	hc     *http.Client
	tokens *tokenCache
	lim    *limiter
	clock  *apiClock

	mu    sync.Mutex
	stats Stats
	// noLinks: the API refused a proof query (links.go), so drains read by filter pages only.
	noLinks atomic.Bool
	// byUpdate: a proven page showed that the API lists by update time (links.go).
	byUpdate atomic.Bool
}

// Stats counts a client's work since it was made.
type Stats struct {
	Calls          int         // API calls sent (not token requests)
	CallsByStatus  map[int]int // by HTTP status; 0 = no reply (network error)
	Retries        int         // calls repeated after a transient error
	Throttled      int         // 429 replies
	Renewals       int         // tokens renewed after a 401
	TokenFetches   int
	LimiterWaits   int           // times the client-side limiter held a call back
	LimiterWaiting time.Duration // total time held back (includes Retry-After)
}

// New validates cfg and builds a client. Errors are *FieldError naming the field.
func New(cfg Config) (*Client, error) {
	v, err := check(&cfg)
	if err != nil {
		return nil, err
	}
	ep, proxy, roots := v.ep, v.proxy, v.roots
	clock := newAPIClock(cfg.Now)
	hc := &http.Client{Transport: &clockTransport{next: newTransport(proxy, roots), clock: clock}, Timeout: cfg.RequestTimeout}
	c := &Client{cfg: cfg, dl: v.dl, ep: ep, hc: hc, clock: clock}
	tokenHTTP := &http.Client{Transport: hc.Transport, Timeout: time.Minute}
	switch {
	case !cfg.ClientSecret.IsZero():
		c.tokens = &tokenCache{fetch: secretFetcher(ep, cfg.ClientID, cfg.ClientSecret.Reveal(), tokenHTTP), now: cfg.Now}
	default:
		c.tokens = &tokenCache{fetch: certFetcher(ep, cfg.ClientID, v.cert, tokenHTTP, clock), now: cfg.Now}
	}
	c.lim = newLimiter(cfg.Limits, time.Now, cfg.Sleep)
	return c, nil
}

// Endpoints returns the resolved addresses.
func (c *Client) Endpoints() Endpoints { return c.ep }

// Stats returns a copy of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	s := c.stats
	s.CallsByStatus = make(map[int]int, len(c.stats.CallsByStatus))
	for k, v := range c.stats.CallsByStatus {
		s.CallsByStatus[k] = v
	}
	c.mu.Unlock()
	s.TokenFetches = c.tokens.Fetches()
	s.LimiterWaits, s.LimiterWaiting = c.lim.stats()
	return s
}

func (c *Client) count(f func(s *Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// CheckToken gets an access token, for a configuration check.
func (c *Client) CheckToken(ctx context.Context) error {
	_, _, err := c.tokens.Token(ctx)
	return err
}

// callbackError marks an error returned by the caller's handler: never retried.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// get calls the alerts endpoint with rawQuery and hands a 200 body to handle, retrying per
// the error's kind. handle may be called more than once (after a cut-off body).
//
// Every wait (the limiter, a Retry-After, a backoff) comes before the token is taken, so a
// token is never sent after a wait that may have outlived it. A 401 renews the token and
// tries again, however often waits make tokens expire; only a token issued for the very call
// that the API refused proves a configuration problem.
func (c *Client) get(ctx context.Context, rawQuery string, handle func(body io.Reader) error) error {
	bo := retry.NewBackoff(c.cfg.BackoffInitial, c.cfg.BackoffMax)
	bo.Multiplier = 1.5 // the per-call growth this client has always had (a call gives up after about 13 s of waits)
	attempts, throttles, renew := 0, 0, false
	began := time.Now()
	// giveUp reports whether waiting d more would pass GiveUpAfter.
	giveUp := func(d time.Duration) bool {
		return c.cfg.GiveUpAfter > 0 && time.Since(began)+d > c.cfg.GiveUpAfter
	}
	for {
		tok, err := c.try(ctx, rawQuery, handle, renew)
		if err == nil {
			return nil
		}
		var cbe *callbackError
		if errors.As(err, &cbe) {
			return cbe.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		renew = false
		switch errorKind(err) {
		case unauthorized:
			if tok.fresh {
				var ae *APIError
				if errors.As(err, &ae) {
					ae.kind = permanent
				}
				return fmt.Errorf("reading alerts: the API refused a freshly issued token: %w", err)
			}
			renew = true
			c.tokens.Invalidate(tok.access)
			c.count(func(s *Stats) { s.Renewals++ })
		case throttled:
			throttles++
			if throttles > c.cfg.MaxThrottleWaits {
				return fmt.Errorf("reading alerts: still throttled after %d waits: %w", throttles-1, err)
			}
			var ae *APIError
			errors.As(err, &ae)
			wait := ae.RetryAfter
			if wait <= 0 {
				wait = bo.NextBackOff()
			} else if c.cfg.OnRetryAfter != nil {
				c.cfg.OnRetryAfter(ae.Status, ae.RetryAfterAsked, wait)
			}
			if giveUp(wait) {
				return fmt.Errorf("reading alerts: gave up after %v (the give-up time is %v): %w", time.Since(began).Round(time.Second), c.cfg.GiveUpAfter, err)
			}
			c.lim.Block(wait)
		case transient:
			attempts++
			if attempts >= c.cfg.MaxAttempts {
				return fmt.Errorf("reading alerts: giving up after %d attempts: %w", attempts, err)
			}
			wait := bo.NextBackOff()
			var ae *APIError
			if errors.As(err, &ae) && ae.RetryAfter > wait {
				wait = ae.RetryAfter
				if c.cfg.OnRetryAfter != nil {
					c.cfg.OnRetryAfter(ae.Status, ae.RetryAfterAsked, wait)
				}
			}
			if giveUp(wait) {
				return fmt.Errorf("reading alerts: gave up after %v (the give-up time is %v): %w", time.Since(began).Round(time.Second), c.cfg.GiveUpAfter, err)
			}
			c.count(func(s *Stats) { s.Retries++ })
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return err
			}
		default:
			return fmt.Errorf("reading alerts: %w", err)
		}
	}
}

// tokenUse is the token a call was sent with. fresh: it was issued for this call, after the
// call's last wait, so a 401 cannot be blamed on its age.
type tokenUse struct {
	access string
	fresh  bool
}

// try makes one call: wait for the limiter, then take the token (renew forces a new one),
// then send at once.
func (c *Client) try(ctx context.Context, rawQuery string, handle func(io.Reader) error, renew bool) (tokenUse, error) {
	var tok tokenUse
	if !renew {
		// A token error shows before a quota slot is taken; the token itself is taken again
		// after the wait.
		if _, _, err := c.tokens.Token(ctx); err != nil {
			return tok, err
		}
	}
	if err := c.lim.Wait(ctx); err != nil {
		return tok, err
	}
	var err error
	if renew {
		tok.access, err = c.tokens.Renew(ctx)
		tok.fresh = err == nil
	} else {
		tok.access, tok.fresh, err = c.tokens.Token(ctx)
	}
	if err != nil {
		return tok, err
	}
	u := *c.ep.API
	u.Path = strings.TrimRight(u.Path, "/") + c.dl.path
	u.RawQuery = rawQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return tok, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.access)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	for _, h := range c.dl.headers {
		req.Header.Set(h[0], h[1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.count(func(s *Stats) { s.Calls++; s.addStatus(0) })
		return tok, &APIError{kind: transient, Err: retry.URLError(err)}
	}
	defer resp.Body.Close()
	c.count(func(s *Stats) {
		s.Calls++
		s.addStatus(resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			s.Throttled++
		}
	})
	if resp.StatusCode != http.StatusOK {
		return tok, c.dl.classify(resp, c.clock.now())
	}
	if err := handle(resp.Body); err != nil {
		var cbe *callbackError
		var de *decodeError
		switch {
		case errors.As(err, &cbe), errors.As(err, &de):
			return tok, err
		case ctx.Err() != nil:
			return tok, ctx.Err()
		default: // cut off, reset or timed out while reading the body
			return tok, &APIError{kind: transient, Status: resp.StatusCode, Message: "the reply was cut off", Err: retry.URLError(err)}
		}
	}
	return tok, nil
}

func (s *Stats) addStatus(code int) {
	if s.CallsByStatus == nil {
		s.CallsByStatus = map[int]int{}
	}
	s.CallsByStatus[code]++
}

// Probe reads one alert of the last day, for a configuration check: it proves the token, the
// permission and the address. It returns how many alerts the page held (0 or 1).
func (c *Client) Probe(ctx context.Context, now time.Time) (int, error) {
	dec := newDecoder(c.dl)
	q := c.dl.query(c.dl.updated+" ge "+c.dl.timeLit(now.Add(-24*time.Hour)), 1, 0, true)
	n := 0
	err := c.get(ctx, q, func(body io.Reader) error {
		var err error
		n, err = dec.decode(body, func([]byte, fields) error { return nil })
		return err
	})
	return n, err
}
