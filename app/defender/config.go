package defender

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"time"

	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/wait"
)

// The client's settings, their defaults and their checks.

// MaxPageSize is the Alert API's largest $top (the endpoint feed's; other feeds have their own).
const MaxPageSize = 10000

// Config says which tenant to read and how. Start from zero values; New applies defaults and
// validates once. FieldError.Field names the Config field.
type Config struct {
	TenantID       string        // GUID or domain name (contoso.onmicrosoft.com)
	ClientID       string        // application (client) id, a GUID
	ClientSecret   secret.String // exactly one of ClientSecret and CertificatePEM
	CertificatePEM secret.String // PEM holding the certificate and its private key

	// Feed is the API read: FeedEndpointAlerts (the default, ""), FeedGraphAlerts or
	// FeedIncidents. It sets the path, field names, hosts and the defaults of PageSize and
	// Limits.
	Feed string

	Cloud    Cloud  // commercial (default), gcc, gcc-high, dod
	Region   string // commercial only: us, eu, uk, au, swa, ina (incidents: us, eu, uk)
	APIURL   string // overrides the API base URL (keeps the cloud's token scope)
	LoginURL string // overrides the Entra ID login base URL
	ProxyURL string // explicit proxy; else HTTPS_PROXY/NO_PROXY
	CAFile   string // extra CA certificates (PEM) for the Microsoft side

	PageSize         int           // $top, default and at most the feed's largest (10,000; graph-alerts 500; incidents 100)
	Limits           Limits        // default the feed's quota (100 calls a minute and 1,500 an hour; graph-alerts 150 a minute; incidents 50 and 1,500)
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

// Validate checks cfg as New does, without building a client: the tenant and client ids, the
// cloud and region, the URLs, the proxy, the CA file and the certificate.
func Validate(cfg Config) error {
	_, err := check(&cfg)
	return err
}

// checked is what check learns on the way, for New.
type checked struct {
	dl    *dialect
	ep    Endpoints
	proxy *url.URL
	roots *x509.CertPool
	cert  *certificate // nil with a client secret
}

func check(cfg *Config) (checked, error) {
	var v checked
	dl, err := dialectOf(cfg.Feed)
	if err != nil {
		return v, err
	}
	v.dl = dl
	if err = cfg.setDefaults(dl); err != nil {
		return v, err
	}
	if v.ep, err = resolveEndpoints(cfg, dl); err != nil {
		return v, err
	}
	if cfg.ProxyURL != "" {
		if v.proxy, err = parseProxyURL(cfg.ProxyURL); err != nil {
			return v, err
		}
	}
	if v.roots, err = rootCAs("CAFile", cfg.CAFile); err != nil {
		return v, err
	}
	if cfg.ClientSecret.IsZero() {
		if v.cert, err = parseCertificate([]byte(cfg.CertificatePEM.Reveal())); err != nil {
			return v, &FieldError{Field: "CertificatePEM", Msg: "cannot be used", Err: err}
		}
		if err := v.cert.check(cfg.Now()); err != nil {
			return v, &FieldError{Field: "CertificatePEM", Msg: "cannot be used", Err: err}
		}
	}
	return v, nil
}

func (cfg *Config) setDefaults(dl *dialect) error {
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
		cfg.PageSize = dl.maxTop
	}
	if cfg.PageSize < 1 || cfg.PageSize > dl.maxTop {
		return &FieldError{Field: "PageSize", Value: fmt.Sprint(cfg.PageSize), Msg: fmt.Sprintf("must be between 1 and %d (the API's largest $top)", dl.maxTop)}
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = dl.limits
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
