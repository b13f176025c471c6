// Package config reads the collector's settings from the environment (DEFENDER_* variables,
// via envconfig) or from a modular input's stanza, validates them once, and says which setting
// is wrong in the words of its source. One table (settings.go) names, defaults and describes
// every setting in both vocabularies.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/secret"
)

// duration is a time.Duration that also accepts days ("7d", "1d12h").
type duration time.Duration

// Decode implements envconfig.Decoder.
func (d *duration) Decode(v string) error {
	p, err := parseDuration(v)
	*d = duration(p)
	return err
}

// parseDuration reads Go durations (90s, 10m, 24h) and days (7d, 1d12h), up to the longest
// a time.Duration holds (maxDays, about 292 years); a longer one is refused as such, never
// wrapped around into a negative or a shorter duration.
func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	var days time.Duration
	if i := strings.IndexByte(v, 'd'); i > 0 {
		n, err := strconv.Atoi(v[:i])
		if err != nil && isDigits(strings.TrimPrefix(v[:i], "+")) {
			return 0, tooLong() // more digits than an int holds
		}
		if err != nil || n < 0 {
			return 0, notDuration()
		}
		if n > maxDays {
			return 0, tooLong()
		}
		days, v = time.Duration(n)*24*time.Hour, v[i+1:]
		if v == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil && goDuration.MatchString(v) {
		return 0, tooLong() // well formed: only its size failed
	}
	if err != nil || d < 0 {
		return 0, notDuration()
	}
	if d > math.MaxInt64-days {
		return 0, tooLong()
	}
	return days + d, nil
}

// maxDays is the most whole days a time.Duration holds.
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

// goDuration is the form time.ParseDuration reads, without a sign.
var goDuration = regexp.MustCompile(`^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// durationError says what is wrong with a duration, for the caller to name the setting and
// quote the value.
type durationError string

func (e durationError) Error() string { return string(e) }

func notDuration() error {
	return durationError("is not a duration such as 90s, 10m, 24h or 7d")
}

func tooLong() error {
	return durationError(fmt.Sprintf("is longer than the longest duration accepted, %dd (about 292 years)", maxDays))
}

// raw holds the settings as given, before validation: read from the environment by
// envconfig (names are DEFENDER_ + the tag), or from a stanza by FromParams. Each field is a
// row of the settings table; a test holds the tags equal to the table's names and defaults.
type raw struct {
	TenantID         string        `envconfig:"TENANT_ID"`
	ClientID         string        `envconfig:"CLIENT_ID"`
	ClientSecret     secret.String `envconfig:"CLIENT_SECRET"`
	ClientSecretFile string        `envconfig:"CLIENT_SECRET_FILE"`
	CertFile         string        `envconfig:"CERT_FILE"`
	Cloud            string        `envconfig:"CLOUD" default:"commercial"`
	Region           string        `envconfig:"REGION"`
	APIURL           string        `envconfig:"API_URL"`
	LoginURL         string        `envconfig:"LOGIN_URL"`
	ProxyURL         string        `envconfig:"PROXY_URL"`
	CAFile           string        `envconfig:"CA_FILE"`
	PageSize         int           `envconfig:"PAGE_SIZE" default:"10000"`
	Start            duration      `envconfig:"START" default:"24h"`
	Overlap          duration      `envconfig:"OVERLAP" default:"10m"`
	Interval         duration      `envconfig:"INTERVAL" default:"60s"`
	StateDir         string        `envconfig:"STATE_DIR" default:"./state"`
	Input            string        `envconfig:"INPUT"`
	Output           string        `ignored:"true"` // "hec" (standalone), or the stanza's output

	HECURL                string        `envconfig:"HEC_URL"`
	HECToken              secret.String `envconfig:"HEC_TOKEN"`
	HECTokenFile          string        `envconfig:"HEC_TOKEN_FILE"`
	HECIndex              string        `envconfig:"HEC_INDEX"`
	HECSourcetype         string        `envconfig:"HEC_SOURCETYPE" default:"ms:defender:atp:alerts"`
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
	Output   string // "hec" or "stdout" (modular input only)
	Input    string // checkpoint name, and the events' source unless one is set: DEFENDER_INPUT, else the tenant id
	Defender defender.Config
	HEC      hec.Config
	Start    time.Duration
	Overlap  time.Duration
	Interval time.Duration
	StateDir string
	Linger   time.Duration

	LogLevel    slog.Level
	LogFormat   string
	MetricsAddr string

	names vocab // what the source calls the settings, for Explain
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
func (c *Config) Explain(err error) error { return c.names.explain(err) }

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
	r.Output = "hec"
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
	// Events name their input unless a source is set: several tenants' inputs into one
	// index stay apart.
	if r.HECSource == "" {
		r.HECSource = c.Input
	}
	c.Defender = defender.Config{
		TenantID: r.TenantID, ClientID: r.ClientID, ClientSecret: clientSecret, CertificatePEM: certPEM,
		Cloud: defender.Cloud(r.Cloud), Region: r.Region, APIURL: r.APIURL, LoginURL: r.LoginURL,
		ProxyURL: r.ProxyURL, CAFile: r.CAFile, PageSize: r.PageSize,
	}
	if err := defender.Validate(c.Defender); err != nil {
		return nil, c.Explain(err)
	}
	if r.Output == "stdout" && strings.TrimSpace(r.HECURL) == "" {
		// Events go to splunkd: HEC is not used, its metadata settings are.
		c.HEC = hec.Config{Host: r.HECHost, Source: r.HECSource, Sourcetype: r.HECSourcetype, Index: r.HECIndex}
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
		URLs: urls, Token: hecToken, Host: r.HECHost, Source: r.HECSource, Sourcetype: r.HECSourcetype, Index: r.HECIndex,
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
	return c, nil
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
