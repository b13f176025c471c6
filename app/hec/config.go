package hec

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"ta-defender-alerts/app/netaddr"
	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/wait"
)

// AckMode says whether to use indexer acknowledgement.
type AckMode string

const (
	AckAuto AckMode = "auto" // use acks when the replies carry an ackId
	AckOn   AckMode = "on"   // require acks: fail if the token has none
	AckOff  AckMode = "off"  // HTTP 200 counts as delivered
)

// The window modes (Config.Window).
const (
	WindowAdaptive = "adaptive"
	WindowFixed    = "fixed"
)

// DefaultMaxInFlight is the window's default upper bound: enough batches to keep 5,000
// alerts/s flowing while acks take 3 s (docs/benchmarks.md).
const DefaultMaxInFlight = 64

// Config says where and how to deliver. New applies defaults and validates once;
// FieldError.Field names the Config field.
type Config struct {
	URLs  []string      // base URLs (https://host:8088) or full endpoint URLs
	Token secret.String // the HEC token

	Host       string // default: this machine's host name
	Source     string // default "defender_alerts"
	Sourcetype string // default "ms:defender:atp:alerts"
	Index      string // empty: the token's default index

	Ack         AckMode       // default auto
	AckTimeout  time.Duration // an ack still false after this means: send again; default 2m
	AckInterval time.Duration // how often pending acks are polled; default 1s

	NoGzip    bool // send bodies uncompressed; by default they are gzipped
	GzipLevel int  // default 1 (fastest)

	BatchBytes int // uncompressed body per request; default 1 MiB (Splunk Cloud)
	BatchCount int // records per request; default 10,000
	// MaxInFlight bounds the window of batches sent and not yet confirmed; default 64. With
	// acks on, requests still go one at a time per URL: the window is batches awaiting acks.
	MaxInFlight int
	// Window is WindowAdaptive (default: one batch when caught up, wider while a backlog
	// drains and acks are slow) or WindowFixed (always MaxInFlight).
	Window string
	// MaxBytesInFlight bounds the compressed bytes of the batches in the window; default
	// 24 MiB. A batch alone always goes.
	MaxBytesInFlight int64
	// AckOverdueMin is the least time a batch waits for its ack before it is re-sent as
	// overdue (3 × the 95th percentile of the URL's recent ack latencies, and only once a
	// later batch is acknowledged); default 10s. AckTimeout stays the outer bound.
	AckOverdueMin time.Duration

	CAFile             string
	InsecureSkipVerify bool

	BackoffInitial time.Duration // default 500ms
	BackoffMax     time.Duration // default 30s
	SetAside       time.Duration // how long a failing URL rests, at most; default 30s
	RequestTimeout time.Duration // default 60s
	// GiveUpAfter bounds how long one batch may take, whatever holds it (retryable errors, a
	// URL set aside, an ack that does not come): then delivery fails with the last error,
	// which stays retryable, so that the caller says so and tries again later. 0 means no
	// bound.
	GiveUpAfter time.Duration
	// NoAckFails ends a batch whose ack did not come after three re-sends with ErrNoAck at
	// once, even before GiveUpAfter: each re-send may index it once more, and acks that never
	// come need a person to look (the daemon). Without GiveUpAfter this is always so.
	NoAckFails bool
	// OnRetry, if set, is told of every retryable failure of a send (HEC busy or unreachable,
	// a proxy's 408 or 5xx): the URL, the error and how long that URL now rests. It is called
	// from the sending goroutines, and must not block.
	OnRetry func(url string, err error, wait time.Duration)

	Sleep func(ctx context.Context, d time.Duration) error // tests may inject
}

// FieldError names the setting that is wrong and why.
type FieldError struct {
	Field string
	Value string // never a secret
	Msg   string
}

// Retryable is false: a setting is wrong until someone changes it.
func (e *FieldError) Retryable() bool { return false }

func (e *FieldError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("%s %q %s", e.Field, clip(e.Value), e.Msg)
	}
	return e.Field + " " + e.Msg
}

// endpoint is one HEC server.
type endpoint struct {
	event   string                 // …/services/collector/event
	ack     string                 // …/services/collector/ack
	health  string                 // …/services/collector/health
	display string                 // for messages
	ch      atomic.Pointer[string] // this client's channel on that server (a new one after HEC forgot it)
	// hc shares the client's transport but has this URL's own cookie jar: a load balancer
	// that pins a channel to an indexer by cookie gets its cookie back on every send and ack
	// poll, even when two URLs share a host name (cookies ignore ports).
	hc *http.Client
	// gate lets one request at a time go until one has been answered, so that requests sent
	// at once at start-up do not each get a different indexer (and cookie) from a balancer.
	gate   chan struct{}
	primed atomic.Bool
	// send is held while a request is on its way when acks are on: one at a time per channel.
	// The ack poller takes it between requests. Senders queue for it one at a time (queue),
	// so that a poll waits behind one sender at most, not behind the whole window.
	send  chan struct{}
	queue chan struct{}
	// retired: a channel given up for sending (a reply was lost on it) whose waiting batches
	// are still asked about (Client.retire).
	retired bool
}

// takeSend takes the channel for one request, once no other sender is ahead in the queue.
func (ep *endpoint) takeSend(ctx context.Context) error {
	select {
	case ep.queue <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-ep.queue }()
	select {
	case ep.send <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parseURL accepts a base URL or the full endpoint URL.
func parseURL(raw string) (*endpoint, []string, error) {
	raw = strings.TrimSpace(raw)
	shown := netaddr.RedactURL(raw) // what messages show: never the credentials a URL may carry
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, nil, &FieldError{Field: "URLs", Value: shown, Msg: "is not an http(s) URL such as https://splunk.example.com:8088"}
	}
	if u.User != nil {
		return nil, nil, &FieldError{Field: "URLs", Value: shown, Msg: "must not carry credentials; the token goes in its own setting"}
	}
	var warn []string
	if u.Scheme == "http" && !netaddr.IsLoopback(u.Hostname()) {
		warn = append(warn, fmt.Sprintf("HEC URL %s uses plain http: events and the token cross the network unencrypted", shown))
	}
	path := strings.TrimRight(u.Path, "/")
	for _, suffix := range []string{"/services/collector/event/1.0", "/services/collector/event", "/services/collector/raw", "/services/collector"} {
		if strings.HasSuffix(path, suffix) {
			path = strings.TrimSuffix(path, suffix)
			break
		}
	}
	base := u.Scheme + "://" + u.Host + path
	ep := &endpoint{
		event:   base + "/services/collector/event",
		ack:     base + "/services/collector/ack",
		health:  base + "/services/collector/health",
		display: u.Scheme + "://" + u.Host,
		gate:    make(chan struct{}, 1),
		send:    make(chan struct{}, 1),
		queue:   make(chan struct{}, 1),
	}
	ep.setChannel(newGUID())
	return ep, warn, nil
}

// channel is the channel requests to ep go on now.
func (ep *endpoint) channel() string { return *ep.ch.Load() }

func (ep *endpoint) setChannel(id string) { ep.ch.Store(&id) }

// withJar gives ep its own cookie jar on the shared transport.
func (ep *endpoint) withJar(hc *http.Client) {
	jar, _ := cookiejar.New(nil) // cannot fail without options
	ep.hc = &http.Client{Transport: hc.Transport, Timeout: hc.Timeout, Jar: jar}
}

// do sends req through ep's client. Until ep has answered once, requests go one at a time.
func (ep *endpoint) do(req *http.Request) (*http.Response, error) {
	if !ep.primed.Load() {
		select {
		case ep.gate <- struct{}{}:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		defer func() { <-ep.gate }()
	}
	resp, err := ep.hc.Do(req)
	if err == nil {
		ep.primed.Store(true)
	}
	return resp, err
}

// newGUID makes a random (version 4) GUID for a request channel.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (c *Config) setDefaults() ([]string, error) {
	var warn []string
	if len(c.URLs) == 0 {
		return nil, &FieldError{Field: "URLs", Msg: "is required (one or more HEC URLs, such as https://splunk.example.com:8088)"}
	}
	if c.Token.IsZero() {
		return nil, &FieldError{Field: "Token", Msg: "is required (the HEC token from Settings → Data inputs → HTTP Event Collector)"}
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	if c.Source == "" {
		c.Source = "defender_alerts"
	}
	if c.Sourcetype == "" {
		c.Sourcetype = "ms:defender:atp:alerts"
	}
	switch c.Ack {
	case "":
		c.Ack = AckAuto
	case AckAuto, AckOn, AckOff:
	default:
		return nil, &FieldError{Field: "Ack", Value: string(c.Ack), Msg: "must be auto, on or off"}
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 2 * time.Minute
	}
	if c.AckInterval == 0 {
		c.AckInterval = time.Second
	}
	if c.GzipLevel == 0 {
		c.GzipLevel = 1
	}
	if c.GzipLevel < 1 || c.GzipLevel > 9 {
		return nil, &FieldError{Field: "GzipLevel", Value: fmt.Sprint(c.GzipLevel), Msg: "must be 1 (fastest) to 9 (smallest)"}
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 1 << 20
	}
	if c.BatchBytes < 1024 {
		return nil, &FieldError{Field: "BatchBytes", Value: fmt.Sprint(c.BatchBytes), Msg: "must be at least 1024"}
	}
	if c.BatchCount == 0 {
		c.BatchCount = 10000
	}
	if c.BatchCount < 1 {
		return nil, &FieldError{Field: "BatchCount", Value: fmt.Sprint(c.BatchCount), Msg: "must be at least 1"}
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 256 {
		return nil, &FieldError{Field: "MaxInFlight", Value: fmt.Sprint(c.MaxInFlight), Msg: "must be between 1 and 256"}
	}
	switch c.Window {
	case "":
		c.Window = WindowAdaptive
	case WindowAdaptive, WindowFixed:
	default:
		return nil, &FieldError{Field: "Window", Value: c.Window, Msg: "must be adaptive or fixed"}
	}
	if c.MaxBytesInFlight == 0 {
		c.MaxBytesInFlight = 24 << 20
	}
	if c.MaxBytesInFlight < 1<<20 {
		return nil, &FieldError{Field: "MaxBytesInFlight", Value: fmt.Sprint(c.MaxBytesInFlight), Msg: "must be at least 1048576 (1 MiB)"}
	}
	if c.AckOverdueMin == 0 {
		c.AckOverdueMin = 10 * time.Second
	}
	if c.BackoffInitial == 0 {
		c.BackoffInitial = 500 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.SetAside == 0 {
		c.SetAside = 30 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = time.Minute
	}
	if c.Sleep == nil {
		c.Sleep = wait.Sleep
	}
	if c.InsecureSkipVerify {
		warn = append(warn, "HEC TLS certificate verification is off (insecure_skip_verify): anyone on the path can read the events and the token")
	}
	return warn, nil
}

func newHTTPClient(c *Config) (*http.Client, error) {
	tlsCfg, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: c.RequestTimeout,
		MaxIdleConnsPerHost:   min(c.MaxInFlight, 32) + 2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, Timeout: c.RequestTimeout}, nil
}

// tlsConfig is the TLS side of the connection to HEC: the CA file's certificates on top of
// the system's, and verification skipped only when asked.
func tlsConfig(c *Config) (*tls.Config, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // only when asked, and warned about
	if c.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pemBytes, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, &FieldError{Field: "CAFile", Value: c.CAFile, Msg: "cannot be read: " + errText(err)}
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, &FieldError{Field: "CAFile", Value: c.CAFile, Msg: "holds no PEM certificate"}
		}
		tlsCfg.RootCAs = pool
	}
	return tlsCfg, nil
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Validate checks cfg as New does, without building a client: settings, URLs, the CA file.
func Validate(cfg Config) error {
	if _, err := cfg.setDefaults(); err != nil {
		return err
	}
	for _, raw := range cfg.URLs {
		if _, _, err := parseURL(raw); err != nil {
			return err
		}
	}
	_, err := tlsConfig(&cfg)
	return err
}
