package defender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"ta-defender-alerts/app/retry"
	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/wait"
)

// MaxPageSize is the API's largest $top.
const MaxPageSize = 10000

// Config says which tenant to read and how. Start from zero values; New applies defaults and
// validates once. FieldError.Field names the Config field.
type Config struct {
	TenantID       string        // GUID or domain name (contoso.onmicrosoft.com)
	ClientID       string        // application (client) id, a GUID
	ClientSecret   secret.String // exactly one of ClientSecret and CertificatePEM
	CertificatePEM secret.String // PEM holding the certificate and its private key

	Cloud    Cloud  // commercial (default), gcc, gcc-high, dod
	Region   string // commercial only: us, eu, uk, au, swa, ina
	APIURL   string // overrides the API base URL (keeps the cloud's token scope)
	LoginURL string // overrides the Entra ID login base URL
	ProxyURL string // explicit proxy; else HTTPS_PROXY/NO_PROXY
	CAFile   string // extra CA certificates (PEM) for the Microsoft side

	PageSize         int           // $top, default and at most 10,000
	Limits           Limits        // default 100 calls a minute and 1,500 an hour (Microsoft's quota)
	MaxAttempts      int           // tries per call for transient errors, default 6
	MaxThrottleWaits int           // 429 replies tolerated per call, default 30
	BackoffInitial   time.Duration // default 1s
	BackoffMax       time.Duration // default 60s
	RequestTimeout   time.Duration // whole call including the body, default 5m
	// GiveUpAfter, if set, bounds how long one call may go on retrying and waiting (throttling,
	// Retry-After, back-off) before it fails with its last error: run --once and a modular
	// input run must end. 0: no bound beyond MaxAttempts and MaxThrottleWaits (the daemon).
	GiveUpAfter time.Duration
	UserAgent   string

	// Now is the clock for windows and token lifetimes; default time.Now. Tests inject one.
	Now func() time.Time
	// OnRetryAfter, if set, is told of every Retry-After the client honours: the reply's
	// status, what the server asked (as sent) and how long the client waits (at most
	// retry.MaxAfter). The caller logs it; this package does not log.
	OnRetryAfter func(status int, asked string, wait time.Duration)
	// Sleep waits between retries; default a timer. Tests may inject one.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client reads alerts. It is safe for concurrent use, though one drain at a time is the norm.
type Client struct {
	cfg    Config
	ep     Endpoints
	hc     *http.Client
	tokens *tokenCache
	lim    *limiter
	clock  *apiClock

	mu    sync.Mutex
	stats Stats
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
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ep, err := resolveEndpoints(&cfg)
	if err != nil {
		return nil, err
	}
	var proxy *url.URL
	if cfg.ProxyURL != "" {
		if proxy, err = parseProxyURL(cfg.ProxyURL); err != nil {
			return nil, err
		}
	}
	roots, err := rootCAs("CAFile", cfg.CAFile)
	if err != nil {
		return nil, err
	}
	clock := newAPIClock(cfg.Now)
	hc := &http.Client{Transport: &clockTransport{next: newTransport(proxy, roots), clock: clock}, Timeout: cfg.RequestTimeout}
	c := &Client{cfg: cfg, ep: ep, hc: hc, clock: clock}
	tokenHTTP := &http.Client{Transport: hc.Transport, Timeout: time.Minute}
	switch {
	case !cfg.ClientSecret.IsZero():
		c.tokens = &tokenCache{fetch: secretFetcher(ep, cfg.ClientID, cfg.ClientSecret.Reveal(), tokenHTTP), now: cfg.Now}
	default:
		cert, err := parseCertificate([]byte(cfg.CertificatePEM.Reveal()))
		if err != nil {
			return nil, &FieldError{Field: "CertificatePEM", Msg: "cannot be used", Err: err}
		}
		if err := cert.check(cfg.Now()); err != nil {
			return nil, &FieldError{Field: "CertificatePEM", Msg: "cannot be used", Err: err}
		}
		c.tokens = &tokenCache{fetch: certFetcher(ep, cfg.ClientID, cert, tokenHTTP, clock), now: cfg.Now}
	}
	c.lim = newLimiter(cfg.Limits, time.Now, cfg.Sleep)
	return c, nil
}

func (cfg *Config) setDefaults() error {
	if !validTenant(cfg.TenantID) {
		if cfg.TenantID == "" {
			return &FieldError{Field: "TenantID", Msg: "is required (the Entra tenant id, a GUID, or its domain such as contoso.onmicrosoft.com)"}
		}
		return &FieldError{Field: "TenantID", Value: cfg.TenantID, Msg: "is neither a GUID nor a domain name such as contoso.onmicrosoft.com"}
	}
	if !isGUID(cfg.ClientID) {
		if cfg.ClientID == "" {
			return &FieldError{Field: "ClientID", Msg: "is required (the application (client) id of the Entra app, a GUID)"}
		}
		return &FieldError{Field: "ClientID", Value: cfg.ClientID, Msg: "is not a GUID (the application (client) id of the Entra app)"}
	}
	switch {
	case cfg.ClientSecret.IsZero() && cfg.CertificatePEM.IsZero():
		return &FieldError{Field: "ClientSecret", Msg: "or a certificate is required (set exactly one)"}
	case !cfg.ClientSecret.IsZero() && !cfg.CertificatePEM.IsZero():
		return &FieldError{Field: "ClientSecret", Msg: "and a certificate are both set; set exactly one"}
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = MaxPageSize
	}
	if cfg.PageSize < 1 || cfg.PageSize > MaxPageSize {
		return &FieldError{Field: "PageSize", Value: fmt.Sprint(cfg.PageSize), Msg: "must be between 1 and 10000 (the API's largest $top)"}
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = defaultLimits
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.MaxThrottleWaits == 0 {
		cfg.MaxThrottleWaits = 30
	}
	if cfg.BackoffInitial == 0 {
		cfg.BackoffInitial = time.Second
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = time.Minute
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Minute
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "TA-defender-alerts"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = wait.Sleep
	}
	return nil
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
	u.Path = strings.TrimRight(u.Path, "/") + "/api/alerts"
	u.RawQuery = rawQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return tok, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.access)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
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
		return tok, classifyResponse(resp, c.clock.now())
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
	dec := newPageDecoder()
	q := "$filter=" + escape("lastUpdateTime ge "+FilterTime(now.Add(-24*time.Hour))) + "&$top=1&$expand=evidence"
	n := 0
	err := c.get(ctx, q, func(body io.Reader) error {
		var err error
		n, err = dec.decode(body, func([]byte, fields) error { return nil })
		return err
	})
	return n, err
}
