// Package config reads the collector's settings from the environment (DEFENDER_* variables,
// via envconfig) or from a modular input's stanza, validates them once, and says which setting
// is wrong in the words of its source. One table (settings.go) names, defaults and describes
// every setting in both vocabularies.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/syslog"
)

// raw holds the settings as given, before validation: read from the environment by
// envconfig (names are DEFENDER_ + the tag), or from a stanza by FromParams. Each field is a
// row of the settings table; a test holds the tags equal to the table's names and defaults.
type raw struct {
	TenantID            string        `envconfig:"TENANT_ID"`
	ClientID            string        `envconfig:"CLIENT_ID"`
	ClientSecret        secret.String `envconfig:"CLIENT_SECRET"`
	ClientSecretFile    string        `envconfig:"CLIENT_SECRET_FILE"`
	CertFile            string        `envconfig:"CERT_FILE"`
	Cloud               string        `envconfig:"CLOUD" default:"commercial"`
	Region              string        `envconfig:"REGION"`
	APIURL              string        `envconfig:"API_URL"`
	LoginURL            string        `envconfig:"LOGIN_URL"`
	ProxyURL            string        `envconfig:"PROXY_URL"`
	CAFile              string        `envconfig:"CA_FILE"`
	PageSize            int           `envconfig:"PAGE_SIZE"`
	Feed                string        `envconfig:"FEED" default:"endpoint-alerts"`
	GraphURL            string        `envconfig:"GRAPH_URL"`
	IncidentsURL        string        `envconfig:"INCIDENTS_URL"`
	Shape               string        `envconfig:"SHAPE" default:"alert"`
	GraphExcludeSources string        `envconfig:"GRAPH_EXCLUDE_SOURCES"`
	Start               duration      `envconfig:"START" default:"24h"`
	Overlap             duration      `envconfig:"OVERLAP" default:"10m"`
	Interval            duration      `envconfig:"INTERVAL" default:"60s"`
	StateDir            string        `envconfig:"STATE_DIR" default:"./state"`
	Input               string        `envconfig:"INPUT"`
	Output              string        `ignored:"true"` // DEFENDER_OUTPUT (standalone), or the stanza's output
	EnvOutput           string        `envconfig:"OUTPUT" default:"hec"`

	SyslogURL        string `envconfig:"SYSLOG_URL"`
	SyslogFormat     string `envconfig:"SYSLOG_FORMAT" default:"cef"`
	SyslogVendor     string `envconfig:"SYSLOG_VENDOR"`
	SyslogProduct    string `envconfig:"SYSLOG_PRODUCT"`
	SyslogVersion    string `envconfig:"SYSLOG_PRODUCT_VERSION"`
	SyslogCAFile     string `envconfig:"SYSLOG_CA_FILE"`
	SyslogCertFile   string `envconfig:"SYSLOG_CERT_FILE"`
	SyslogKeyFile    string `envconfig:"SYSLOG_KEY_FILE"`
	SyslogServerName string `envconfig:"SYSLOG_SERVER_NAME"`
	SyslogFraming    string `envconfig:"SYSLOG_FRAMING" default:"octet-counting"`

	HECURL                string        `envconfig:"HEC_URL"`
	HECToken              secret.String `envconfig:"HEC_TOKEN"`
	HECTokenFile          string        `envconfig:"HEC_TOKEN_FILE"`
	HECIndex              string        `envconfig:"HEC_INDEX"`
	HECSourcetype         string        `envconfig:"HEC_SOURCETYPE"`
	HECSource             string        `envconfig:"HEC_SOURCE"`
	HECHost               string        `envconfig:"HEC_HOST"`
	HECAck                string        `envconfig:"HEC_ACK" default:"auto"`
	HECAckTimeout         duration      `envconfig:"HEC_ACK_TIMEOUT" default:"2m"`
	HECAckInterval        duration      `envconfig:"HEC_ACK_INTERVAL" default:"1s"`
	HECCAFile             string        `envconfig:"HEC_CA_FILE"`
	HECInsecureSkipVerify bool          `envconfig:"HEC_INSECURE_SKIP_VERIFY" default:"false"`
	HECBatchBytes         int           `envconfig:"HEC_BATCH_BYTES" default:"1048576"`
	HECGzip               bool          `envconfig:"HEC_GZIP" default:"true"`
	HECLinger             duration      `envconfig:"HEC_LINGER" default:"2s"`
	HECMaxInFlight        int           `envconfig:"HEC_MAX_IN_FLIGHT" default:"64"`
	HECWindow             string        `envconfig:"HEC_WINDOW" default:"adaptive"`
	HECMaxBytesInFlight   int           `envconfig:"HEC_MAX_BYTES_IN_FLIGHT" default:"25165824"`

	LogLevel    string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat   string `envconfig:"LOG_FORMAT" default:"text"`
	MetricsAddr string `envconfig:"METRICS_ADDR"`

	certPEM secret.String // certificate PEM text given inline (modular input)
	names   vocab         // what the source calls the settings
}

// Config is the validated configuration.
type Config struct {
	Output string // "hec", "syslog" (standalone only) or "stdout" (modular input only)
	// Syslog is where events go with output syslog (its Report and hooks left to the
	// caller), SyslogFormat how each is written: cef, leef or json.
	Syslog       syslog.Options
	SyslogFormat string
	// SyslogHeader is the CEF and LEEF header's vendor, product and version ("" each: the old
	// connector's Microsoft, Microsoft Defender ATP, 2.0).
	SyslogHeader [3]string
	// Input is the checkpoint's name: the input's (DEFENDER_INPUT, else the tenant id; a
	// stanza's name) for the endpoint feed, <input>.<feed> for the others (ForFeed). The
	// input's name is also the events' source unless one is set.
	Input string
	// Feed is the feed this configuration reads, the first of Feeds; ForFeed gives the others'.
	Feed  string
	Feeds []string
	// ExcludeSources are the graph-alerts feed's service sources left out.
	ExcludeSources []string
	// NestedSourcetype is the sourcetype of the events of items nested in the feed's own (the
	// incidents feed's alerts); "" for a feed without.
	NestedSourcetype string
	// Detections: each alert goes to HEC or splunkd as the old SIEM API's detections, one per
	// evidence item (shape detection; endpoint-alerts only).
	Detections bool
	Defender   defender.Config
	HEC        hec.Config
	Start      time.Duration
	Overlap    time.Duration
	Interval   time.Duration
	StateDir   string
	Linger     time.Duration

	LogLevel    slog.Level
	LogFormat   string
	MetricsAddr string

	names vocab // what the source calls the settings, for Explain
	base  perFeed
}

// Error names the variable that is wrong and why; a secret's value is never shown.
type Error struct {
	Var   string
	Value string
	Msg   string
}

func (e *Error) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("%s: %q %s", e.Var, e.Value, e.Msg)
	}
	return e.Var + ": " + e.Msg
}

// Explain turns an error of the defender or hec package about one of its Config fields into
// an *Error naming the setting as the configuration's source calls it (DEFENDER_HEC_URL in the
// environment, hec_url in a stanza); other errors are returned as they are.
func (c *Config) Explain(err error) error {
	f := feedNamed(c.Feed)
	if f == nil {
		f = &feeds[0]
	}
	return c.names.explain(err, f.urlField)
}

// FromEnv reads and validates the DEFENDER_* environment.
func FromEnv() (*Config, error) {
	r := raw{names: envNames}
	if err := envconfig.Process("DEFENDER", &r); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			val := pe.Value
			if s := find(func(s *Setting) bool { return s.Env == pe.KeyName }); s == nil || s.Secret {
				val = ""
			}
			var ne *strconv.NumError
			var de durationError
			msg := "is not valid: " + pe.Err.Error()
			switch {
			case errors.As(pe.Err, &ne):
				msg = "is not a number"
			case errors.As(pe.Err, &de):
				msg = de.Error()
			}
			return nil, &Error{Var: pe.KeyName, Value: val, Msg: msg}
		}
		return nil, err
	}
	if r.Output = strings.ToLower(strings.TrimSpace(r.EnvOutput)); r.Output != "hec" && r.Output != "syslog" {
		return nil, r.errorf("EnvOutput", r.EnvOutput, "must be hec or syslog")
	}
	return r.build()
}

// errorf makes an *Error about the setting that fills the raw field, under the source's name.
func (r *raw) errorf(field, value, msg string) *Error {
	// A secret's value is never quoted, whatever went wrong with it; the certificate setting
	// holds a file's path (quoted: it helps) or PEM text (never quoted).
	if s := find(func(s *Setting) bool { return s.field == field }); s != nil && s.Secret && (field != "CertFile" || IsPEM(value)) {
		value = ""
	}
	return &Error{Var: r.names.name(field), Value: value, Msg: msg}
}

// IsPEM reports whether a certificate setting holds PEM text rather than a file's path: it
// has a PEM block, wherever it starts (openssl's pkcs12 output puts "Bag Attributes" lines
// before it).
func IsPEM(v string) bool { return strings.Contains(v, "-----BEGIN ") }

func (r *raw) build() (*Config, error) {
	c := &Config{
		names:       r.names,
		Output:      r.Output,
		Input:       r.Input,
		Start:       time.Duration(r.Start),
		Overlap:     time.Duration(r.Overlap),
		Interval:    time.Duration(r.Interval),
		StateDir:    r.StateDir,
		Linger:      time.Duration(r.HECLinger),
		LogFormat:   r.LogFormat,
		MetricsAddr: r.MetricsAddr,
	}
	clientSecret, err := r.secretFrom(r.ClientSecret, r.ClientSecretFile, "ClientSecret", "ClientSecretFile")
	if err != nil {
		return nil, err
	}
	certPEM := r.certPEM
	if certPEM.IsZero() && r.CertFile != "" {
		b, err := os.ReadFile(r.CertFile)
		if err != nil {
			return nil, r.errorf("CertFile", r.CertFile, "cannot be read: "+pathErr(err))
		}
		certPEM = secret.String(b)
	}
	hecToken, err := r.secretFrom(r.HECToken, r.HECTokenFile, "HECToken", "HECTokenFile")
	if err != nil {
		return nil, err
	}
	if c.Input == "" {
		c.Input = r.TenantID
	}
	if c.Feeds, err = r.parseFeeds(); err != nil {
		return nil, err
	}
	if c.ExcludeSources, err = r.parseExcludeSources(); err != nil {
		return nil, err
	}
	c.base = perFeed{input: c.Input, sourcetype: r.HECSourcetype, apiURL: r.APIURL, graphURL: r.GraphURL, incidentsURL: r.IncidentsURL, pageSize: r.PageSize, exclude: c.ExcludeSources, region: r.Region}
	// Events name their input unless a source is set: several tenants' inputs into one
	// index stay apart.
	if r.HECSource == "" {
		r.HECSource = c.Input
	}
	c.Defender = defender.Config{
		TenantID: r.TenantID, ClientID: r.ClientID, ClientSecret: clientSecret, CertificatePEM: certPEM,
		Cloud: defender.Cloud(r.Cloud), Region: r.Region, LoginURL: r.LoginURL,
		ProxyURL: r.ProxyURL, CAFile: r.CAFile,
	}
	for _, f := range c.Feeds {
		fc := c.ForFeed(f)
		if err := defender.Validate(fc.Defender); err != nil {
			return nil, fc.Explain(err)
		}
	}
	switch shape := strings.ToLower(strings.TrimSpace(r.Shape)); {
	case shape == "" || shape == "alert":
	case shape != "detection":
		return nil, r.errorf("Shape", r.Shape, "must be alert or detection")
	case r.Output == "syslog":
		return nil, r.errorf("Shape", r.Shape, "applies to HEC and splunkd; over syslog, "+r.names.name("SyslogFormat")+" chooses (cef and leef send detections)")
	case len(c.Feeds) != 1 || c.Feeds[0] != DefaultFeed:
		return nil, r.errorf("Shape", r.Shape, "applies to the endpoint-alerts feed alone (detections are made from Alert API alerts)")
	case strings.EqualFold(strings.TrimSpace(r.HECSourcetype), FeedSourcetype(DefaultFeed)):
		// Detections under the alerts' sourcetype would break every search and CIM mapping
		// written for either.
		return nil, r.errorf("HECSourcetype", r.HECSourcetype, "is the sourcetype of alerts, but "+r.names.name("Shape")+" is detection: unset it (detections get "+DetectionSourcetype+") or name another")
	default:
		c.Detections = true
		c.base.detections = true
	}
	if r.Output == "syslog" {
		if slices.Contains(c.Feeds, "incidents") {
			return nil, r.errorf("Feed", r.Feed, "names incidents, whose events (incidents and their alerts) go to Splunk only: the syslog output sends alerts as detections; read incidents with another collector whose output is hec")
		}
		if err := r.syslogConfig(c); err != nil {
			return nil, err
		}
		// HEC is not used; its metadata settings are, for a json event's fields elsewhere.
		c.HEC = hec.Config{Host: r.HECHost, Source: r.HECSource, Index: r.HECIndex}
		return r.finish(c)
	}
	for _, f := range [][2]string{{"SyslogURL", r.SyslogURL}, {"SyslogVendor", r.SyslogVendor}, {"SyslogProduct", r.SyslogProduct}, {"SyslogVersion", r.SyslogVersion}} {
		if f[1] != "" {
			return nil, r.errorf(f[0], f[1], "is set but "+r.names.name("EnvOutput")+" is not syslog: set "+r.names.name("EnvOutput")+"=syslog, or unset it")
		}
	}
	if r.Output == "stdout" && strings.TrimSpace(r.HECURL) == "" {
		// Events go to splunkd: HEC is not used, its metadata settings are.
		c.HEC = hec.Config{Host: r.HECHost, Source: r.HECSource, Index: r.HECIndex}
		return r.finish(c)
	}
	if strings.TrimSpace(r.HECURL) == "" {
		return nil, r.errorf("HECURL", "", "is required (one or more HEC URLs, comma-separated, such as https://splunk.example.com:8088)")
	}
	var urls []string
	for _, u := range strings.Split(r.HECURL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if hecToken.IsZero() {
		return nil, r.errorf("HECToken", "", "is required"+r.or("HECTokenFile")+": the HEC token from Settings → Data inputs → HTTP Event Collector")
	}
	c.HEC = hec.Config{
		URLs: urls, Token: hecToken, Host: r.HECHost, Source: r.HECSource, Index: r.HECIndex,
		Ack: hec.AckMode(strings.ToLower(r.HECAck)), AckTimeout: time.Duration(r.HECAckTimeout), AckInterval: time.Duration(r.HECAckInterval), NoGzip: !r.HECGzip,
		BatchBytes: r.HECBatchBytes, MaxInFlight: r.HECMaxInFlight,
		Window: strings.ToLower(r.HECWindow), MaxBytesInFlight: int64(r.HECMaxBytesInFlight), CAFile: r.HECCAFile, InsecureSkipVerify: r.HECInsecureSkipVerify,
	}
	if err := hec.Validate(c.HEC); err != nil {
		return nil, c.Explain(err)
	}
	return r.finish(c)
}

// secretFrom is the secret given in the setting that fills field, or read from the file
// named in fileField; one of them, not both.
func (r *raw) secretFrom(v secret.String, file, field, fileField string) (secret.String, error) {
	if file == "" {
		return v, nil
	}
	if !v.IsZero() {
		return "", r.errorf(field, "", "and "+r.names.name(fileField)+" are both set; set one")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", r.errorf(fileField, file, "cannot be read: "+pathErr(err))
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", r.errorf(fileField, file, "is empty")
	}
	return secret.String(s), nil
}

// or is " (or NAME)" for an alternative setting the source has, "" when it has none.
func (r *raw) or(field string) string {
	s := find(func(s *Setting) bool { return s.field == field })
	if s == nil || r.names.nameOf(s) == "" {
		return ""
	}
	return " (or " + r.names.nameOf(s) + ")"
}

func (r *raw) finish(c *Config) (*Config, error) {
	var err error
	switch {
	case c.Start <= 0:
		return nil, r.errorf("Start", "", "must be more than 0 (how far back the first run reads, such as 24h or 7d)")
	case c.Overlap < 0 || c.Overlap > 24*time.Hour:
		return nil, r.errorf("Overlap", c.Overlap.String(), "must be between 0 and 24h (10m is the default)")
	case c.Interval < time.Second:
		return nil, r.errorf("Interval", c.Interval.String(), "must be at least 1s")
	case c.StateDir == "":
		return nil, r.errorf("StateDir", "", "must not be empty")
	}
	if c.LogLevel, err = parseLevel(r.LogLevel); err != nil {
		return nil, r.errorf("LogLevel", r.LogLevel, logLevelMsg)
	}
	if c.LogFormat = strings.ToLower(c.LogFormat); c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, r.errorf("LogFormat", r.LogFormat, "must be text or json")
	}
	// The configuration as returned is its first feed's; ForFeed gives the others'.
	fc := c.ForFeed(c.Feeds[0])
	fc.Feeds = c.Feeds
	return fc, nil
}

const logLevelMsg = "must be debug, info, warn or error"

// parseLevel reads debug, info, warn(ing) or error.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("unknown level")
}

func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
