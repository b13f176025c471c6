package syslog

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"
)

// Framing is how messages are delimited on a stream (TCP, TLS). UDP needs none: one message
// is one datagram.
type Framing int

const (
	// OctetCounting prefixes each message with its length and a space (RFC 5425, RFC 6587
	// 3.4.1): any byte may appear in a message.
	OctetCounting Framing = iota
	// LF ends each message with a line feed (RFC 6587 3.4.2), for receivers that want it. A
	// message holding a line feed cannot be framed so: it is refused (ErrNewline), never
	// altered, so that it reaches the dead-letter file as it was.
	LF
)

func (f Framing) String() string {
	if f == LF {
		return "lf"
	}
	return "octet-counting"
}

// Facility and Severity make a message's PRI (facility*8 + severity, RFC 5424 6.2.1).
type (
	Facility int
	Severity int
)

// The facilities a collector of security alerts may want; any value from 0 to 23 is valid.
const (
	User     Facility = 1
	AuthPriv Facility = 10
	Local0   Facility = 16
	Local4   Facility = 20
	Local7   Facility = 23
)

// Severities, RFC 5424 table 2.
const (
	Emergency Severity = iota
	Alert
	Critical
	Error
	Warning
	Notice
	Informational
	Debug
)

// Defaults. Local4 is a local-use facility no daemon claims, so a receiver can route on it
// without catching anything else; authpriv would send security alerts into the host's own
// authentication log on relays that keep the distribution's rules. Notice: each record is
// significant, but the record's own severity travels in its content (CEF, LEEF), not in PRI.
const (
	DefaultFacility = Local4
	DefaultSeverity = Notice
	DefaultAppName  = "defender_alerts"
	DefaultUDPSize  = 1400 // keeps a datagram under a typical path MTU (1500) with IP and UDP headers
	DefaultTCPSize  = 8192 // RFC 5425 4.3.1: receivers should take 8192 octets
	DefaultResend   = 5 * time.Second
	DefaultKeep     = 16 << 20 // bytes kept for re-sending
	DefaultLinger   = 200 * time.Millisecond
	DefaultTimeout  = 30 * time.Second
	flushBytes      = 64 << 10 // a write to the connection at least this often
)

// Options configure a Writer. Only URL is required.
type Options struct {
	// URL is tcp://host:port, tls://host:port or udp://host:port.
	URL string
	// Framing on TCP and TLS (ignored for UDP): OctetCounting unless set.
	Framing Framing
	// TLS: the CA bundle to trust instead of the system's (PEM), a client certificate and its
	// key (PEM, both or neither) and the name to verify the server's certificate against
	// instead of the URL's host. TLS 1.2 is the least accepted.
	CAFile, CertFile, KeyFile, ServerName string

	// Hostname is the HOSTNAME field: os.Hostname() unless set.
	Hostname string
	// AppName is the APP-NAME field: DefaultAppName unless set.
	AppName string
	// Facility and Severity make every message's PRI; nil: the defaults.
	Facility *Facility
	Severity *Severity

	// MaxSize is the longest message in bytes, header included and framing not: DefaultUDPSize
	// for UDP, DefaultTCPSize otherwise. A longer one goes to Shorten, or is refused (ErrTooBig).
	MaxSize int
	// Shorten, if set, is asked for a shorter body for a message that is over MaxSize: room is
	// the most bytes its body may have. It returns the new body, or false if it cannot shorten
	// it; a body still over room is refused (ErrTooBig). It runs inside Write.
	Shorten func(m Message, room int) ([]byte, bool)

	// Resend is how far back, before a connection error, written messages are sent again
	// (DefaultResend unless set); Keep bounds the bytes held for it (DefaultKeep unless set).
	// When Keep is full, writing waits until the oldest message is older than Resend: the
	// guarantee holds, at the cost of throughput (Keep/Resend bytes a second).
	Resend time.Duration
	Keep   int
	// Linger is the longest a written message waits before it is flushed without a Flush call
	// (DefaultLinger unless set).
	Linger time.Duration
	// Timeout bounds each connect, each write, and Close's wait for the receiver to close its
	// side (DefaultTimeout unless set).
	Timeout time.Duration
	// Backoff between connection attempts: from BackoffMin (100 ms) doubling up to BackoffMax
	// (30 s), jittered. The first reconnect after a break is immediate.
	BackoffMin, BackoffMax time.Duration
	// OnRetry, if set, hears every failed attempt to connect or re-send, and the wait before
	// the next: for a log line or a health signal. It must not call the Writer.
	OnRetry func(err error, wait time.Duration)
	// Now is the clock for the re-send window; time.Now unless set.
	Now func() time.Time
}

// SettingError names the option a value was refused for.
type SettingError struct {
	Setting string // the Options field
	Value   string
	Err     error
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("syslog %s %q: %v", e.Setting, e.Value, e.Err)
}
func (e *SettingError) Unwrap() error { return e.Err }

// target is where a Writer sends, resolved from Options.
type target struct {
	network string // tcp or udp
	addr    string
	tls     *tls.Config
}

// resolve checks o, fills in the defaults and reads the TLS files.
func (o *Options) resolve() (target, error) {
	var t target
	u, err := url.Parse(o.URL)
	if err != nil {
		return t, &SettingError{"URL", o.URL, errors.New("not a URL")}
	}
	switch u.Scheme {
	case "tcp", "tls":
		t.network = "tcp"
	case "udp":
		t.network = "udp"
	default:
		return t, &SettingError{"URL", o.URL, errors.New("the scheme must be tcp, tls or udp")}
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return t, &SettingError{"URL", o.URL, errors.New("want scheme://host:port and nothing else")}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return t, &SettingError{"URL", o.URL, errors.New("the port must be from 1 to 65535")}
	}
	t.addr = u.Host
	if u.Scheme == "tls" {
		if t.tls, err = o.tlsConfig(host); err != nil {
			return t, err
		}
	} else if o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.ServerName != "" {
		return t, &SettingError{"URL", o.URL, errors.New("CA, client certificate and server name need a tls:// URL")}
	}
	if o.Framing != OctetCounting && o.Framing != LF {
		return t, &SettingError{"Framing", strconv.Itoa(int(o.Framing)), errors.New("unknown framing")}
	}
	if o.Hostname == "" {
		if o.Hostname, err = os.Hostname(); err != nil || o.Hostname == "" {
			o.Hostname = "-"
		}
	}
	if err := checkField(o.Hostname, 255); err != nil {
		return t, &SettingError{"Hostname", o.Hostname, err}
	}
	if o.AppName == "" {
		o.AppName = DefaultAppName
	}
	if err := checkField(o.AppName, 48); err != nil {
		return t, &SettingError{"AppName", o.AppName, err}
	}
	fac, sev := DefaultFacility, DefaultSeverity
	if o.Facility != nil {
		fac = *o.Facility
	}
	if o.Severity != nil {
		sev = *o.Severity
	}
	if fac < 0 || fac > 23 {
		return t, &SettingError{"Facility", strconv.Itoa(int(fac)), errors.New("must be from 0 to 23")}
	}
	if sev < 0 || sev > 7 {
		return t, &SettingError{"Severity", strconv.Itoa(int(sev)), errors.New("must be from 0 to 7")}
	}
	o.Facility, o.Severity = &fac, &sev
	if o.MaxSize == 0 {
		o.MaxSize = DefaultTCPSize
		if t.network == "udp" {
			o.MaxSize = DefaultUDPSize
		}
	}
	if o.MaxSize < 480 || (t.network == "udp" && o.MaxSize > 65507) {
		// RFC 5424 6.1: every receiver takes 480 octets; a datagram carries at most 65507.
		return t, &SettingError{"MaxSize", strconv.Itoa(o.MaxSize), errors.New("must be from 480 (65507 at most for UDP)")}
	}
	o.Resend = orDefault(o.Resend, DefaultResend)
	o.Linger = orDefault(o.Linger, DefaultLinger)
	o.Timeout = orDefault(o.Timeout, DefaultTimeout)
	o.BackoffMin = orDefault(o.BackoffMin, 100*time.Millisecond)
	o.BackoffMax = orDefault(o.BackoffMax, 30*time.Second)
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.Keep < 2*(o.MaxSize+16) {
		return t, &SettingError{"Keep", strconv.Itoa(o.Keep), fmt.Errorf("must hold two messages of MaxSize (%d)", o.MaxSize)}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return t, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// tlsConfig reads the CA and client certificate files; host is the URL's.
func (o *Options) tlsConfig(host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if o.ServerName != "" {
		c.ServerName = o.ServerName
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, &SettingError{"CAFile", o.CAFile, err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &SettingError{"CAFile", o.CAFile, errors.New("holds no PEM certificate")}
		}
		c.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, &SettingError{"CertFile", o.CertFile, errors.New("a client certificate needs both CertFile and KeyFile")}
	}
	if o.CertFile != "" {
		// crypto/tls's errors name files and faults, never key material.
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, &SettingError{"CertFile", o.CertFile, fmt.Errorf("with KeyFile %q: %w", o.KeyFile, err)}
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
