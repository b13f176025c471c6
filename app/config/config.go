// Package config reads the standalone collector's settings from the environment
// (DEFENDER_* variables, via envconfig), validates them once, and says which variable is wrong.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/secret"
)

// Duration is a time.Duration that also accepts days ("7d", "1d12h").
type Duration time.Duration

// Decode implements envconfig.Decoder.
func (d *Duration) Decode(v string) error {
	p, err := ParseDuration(v)
	*d = Duration(p)
	return err
}

// ParseDuration reads Go durations (90s, 10m, 24h) and days (7d, 1d12h).
func ParseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	var days time.Duration
	if i := strings.IndexByte(v, 'd'); i > 0 {
		n, err := strconv.Atoi(v[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration such as 90s, 10m, 24h or 7d", v)
		}
		days, v = time.Duration(n)*24*time.Hour, v[i+1:]
		if v == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 90s, 10m, 24h or 7d", v)
	}
	return days + d, nil
}

// env is the environment as envconfig reads it; names are DEFENDER_ + the tag.
type env struct {
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
	Start            Duration      `envconfig:"START" default:"24h"`
	Overlap          Duration      `envconfig:"OVERLAP" default:"10m"`
	Interval         Duration      `envconfig:"INTERVAL" default:"60s"`
	StateDir         string        `envconfig:"STATE_DIR" default:"./state"`
	Input            string        `envconfig:"INPUT"`

	HECURL                string        `envconfig:"HEC_URL"`
	HECToken              secret.String `envconfig:"HEC_TOKEN"`
	HECTokenFile          string        `envconfig:"HEC_TOKEN_FILE"`
	HECIndex              string        `envconfig:"HEC_INDEX"`
	HECSourcetype         string        `envconfig:"HEC_SOURCETYPE" default:"ms:defender:atp:alerts"`
	HECSource             string        `envconfig:"HEC_SOURCE" default:"defender_alerts"`
	HECHost               string        `envconfig:"HEC_HOST"`
	HECAck                string        `envconfig:"HEC_ACK" default:"auto"`
	HECAckTimeout         Duration      `envconfig:"HEC_ACK_TIMEOUT" default:"2m"`
	HECAckInterval        Duration      `envconfig:"HEC_ACK_INTERVAL" default:"1s"`
	HECCAFile             string        `envconfig:"HEC_CA_FILE"`
	HECInsecureSkipVerify bool          `envconfig:"HEC_INSECURE_SKIP_VERIFY"`
	HECBatchBytes         int           `envconfig:"HEC_BATCH_BYTES" default:"1048576"`
	HECGzip               bool          `envconfig:"HEC_GZIP" default:"true"`
	HECLinger             Duration      `envconfig:"HEC_LINGER" default:"2s"`
	HECMaxInFlight        int           `envconfig:"HEC_MAX_IN_FLIGHT" default:"1"`

	LogLevel    string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat   string `envconfig:"LOG_FORMAT" default:"text"`
	MetricsAddr string `envconfig:"METRICS_ADDR"`

	output  string        // "hec" (standalone) or "stdout" (modular input's default)
	certPEM secret.String // certificate PEM text given inline (modular input)
	name    func(envVar string) string
}

// Config is the validated configuration.
type Config struct {
	Output   string // "hec" or "stdout" (modular input only)
	Input    string // checkpoint name: DEFENDER_INPUT, else the tenant id
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

// Names of the defender and hec Config fields as the standalone mode calls them.
var (
	DefenderVars = map[string]string{
		"TenantID": "DEFENDER_TENANT_ID", "ClientID": "DEFENDER_CLIENT_ID", "ClientSecret": "DEFENDER_CLIENT_SECRET",
		"CertificatePEM": "DEFENDER_CERT_FILE", "Cloud": "DEFENDER_CLOUD", "Region": "DEFENDER_REGION",
		"APIURL": "DEFENDER_API_URL", "LoginURL": "DEFENDER_LOGIN_URL", "ProxyURL": "DEFENDER_PROXY_URL",
		"CAFile": "DEFENDER_CA_FILE", "PageSize": "DEFENDER_PAGE_SIZE",
	}
	HECVars = map[string]string{
		"URLs": "DEFENDER_HEC_URL", "Token": "DEFENDER_HEC_TOKEN", "Ack": "DEFENDER_HEC_ACK",
		"CAFile": "DEFENDER_HEC_CA_FILE", "BatchBytes": "DEFENDER_HEC_BATCH_BYTES", "GzipLevel": "DEFENDER_HEC_GZIP",
		"BatchCount": "DEFENDER_HEC_BATCH_COUNT", "MaxInFlight": "DEFENDER_HEC_MAX_IN_FLIGHT",
	}
)

// Rename turns a *defender.FieldError or *hec.FieldError into an *Error with the caller's
// setting names.
func Rename(err error, defenderNames, hecNames map[string]string) error {
	var de *defender.FieldError
	if errors.As(err, &de) {
		msg := de.Msg
		if de.Err != nil {
			msg += ": " + de.Err.Error()
		}
		return &Error{Var: nameOr(defenderNames, de.Field), Value: de.Value, Msg: msg}
	}
	var he *hec.FieldError
	if errors.As(err, &he) {
		return &Error{Var: nameOr(hecNames, he.Field), Value: he.Value, Msg: he.Msg}
	}
	return err
}

func nameOr(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return k
}

// FromEnv reads and validates the DEFENDER_* environment.
func FromEnv() (*Config, error) {
	var e env
	if err := envconfig.Process("DEFENDER", &e); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			v := pe.KeyName // already DEFENDER_…
			val := pe.Value
			if strings.Contains(v, "SECRET") || strings.Contains(v, "TOKEN") {
				val = ""
			}
			var ne *strconv.NumError
			msg := pe.Err.Error()
			if errors.As(pe.Err, &ne) {
				msg = "is not a number"
			}
			return nil, &Error{Var: v, Value: val, Msg: "is not valid: " + msg}
		}
		return nil, err
	}
	e.output = "hec"
	return e.build()
}

// errorf makes an *Error for an environment variable, under the caller's name for it.
func (e *env) errorf(envVar, value, msg string) *Error {
	return &Error{Var: e.name(envVar), Value: value, Msg: msg}
}

func (e *env) build() (*Config, error) {
	if e.name == nil {
		e.name = func(v string) string { return v }
	}
	c := &Config{
		Output:      e.output,
		Input:       e.Input,
		Start:       time.Duration(e.Start),
		Overlap:     time.Duration(e.Overlap),
		Interval:    time.Duration(e.Interval),
		StateDir:    e.StateDir,
		Linger:      time.Duration(e.HECLinger),
		LogFormat:   e.LogFormat,
		MetricsAddr: e.MetricsAddr,
	}
	secretFrom := func(v secret.String, file, varName string) (secret.String, error) {
		if file == "" {
			return v, nil
		}
		if !v.IsZero() {
			return "", e.errorf(varName, "", "and "+varName+"_FILE are both set; set one")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", e.errorf(varName+"_FILE", file, "cannot be read: "+pathErr(err))
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", e.errorf(varName+"_FILE", file, "is empty")
		}
		return secret.String(s), nil
	}
	clientSecret, err := secretFrom(e.ClientSecret, e.ClientSecretFile, "DEFENDER_CLIENT_SECRET")
	if err != nil {
		return nil, err
	}
	certPEM := e.certPEM
	if certPEM.IsZero() && e.CertFile != "" {
		b, err := os.ReadFile(e.CertFile)
		if err != nil {
			return nil, e.errorf("DEFENDER_CERT_FILE", e.CertFile, "cannot be read: "+pathErr(err))
		}
		certPEM = secret.String(b)
	}
	hecToken, err := secretFrom(e.HECToken, e.HECTokenFile, "DEFENDER_HEC_TOKEN")
	if err != nil {
		return nil, err
	}
	c.Defender = defender.Config{
		TenantID: e.TenantID, ClientID: e.ClientID, ClientSecret: clientSecret, CertificatePEM: certPEM,
		Cloud: defender.Cloud(e.Cloud), Region: e.Region, APIURL: e.APIURL, LoginURL: e.LoginURL,
		ProxyURL: e.ProxyURL, CAFile: e.CAFile, PageSize: e.PageSize,
	}
	if _, err := defender.New(c.Defender); err != nil {
		return nil, e.rename(err)
	}
	if e.output == "stdout" && strings.TrimSpace(e.HECURL) == "" {
		// Events go to splunkd: HEC is not used, its metadata settings are.
		c.HEC = hec.Config{Host: e.HECHost, Source: e.HECSource, Sourcetype: e.HECSourcetype, Index: e.HECIndex}
		return e.finish(c)
	}
	if strings.TrimSpace(e.HECURL) == "" {
		return nil, e.errorf("DEFENDER_HEC_URL", "", "is required (one or more HEC URLs, comma-separated, such as https://splunk.example.com:8088)")
	}
	var urls []string
	for _, u := range strings.Split(e.HECURL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if hecToken.IsZero() {
		return nil, e.errorf("DEFENDER_HEC_TOKEN", "", "is required (or DEFENDER_HEC_TOKEN_FILE): the HEC token from Settings → Data inputs → HTTP Event Collector")
	}
	gzip := e.HECGzip
	c.HEC = hec.Config{
		URLs: urls, Token: hecToken, Host: e.HECHost, Source: e.HECSource, Sourcetype: e.HECSourcetype, Index: e.HECIndex,
		Ack: hec.AckMode(strings.ToLower(e.HECAck)), AckTimeout: time.Duration(e.HECAckTimeout), AckInterval: time.Duration(e.HECAckInterval), Gzip: &gzip,
		BatchBytes: e.HECBatchBytes, MaxInFlight: e.HECMaxInFlight, CAFile: e.HECCAFile, InsecureSkipVerify: e.HECInsecureSkipVerify,
	}
	if err := hec.Validate(c.HEC); err != nil {
		return nil, e.rename(err)
	}
	return e.finish(c)
}

// rename gives a defender or hec field error the caller's name for the setting.
func (e *env) rename(err error) error {
	err = Rename(err, DefenderVars, HECVars)
	var ce *Error
	if errors.As(err, &ce) {
		ce.Var = e.name(ce.Var)
	}
	return err
}

func (e *env) finish(c *Config) (*Config, error) {
	var err error
	switch {
	case c.Start <= 0:
		return nil, e.errorf("DEFENDER_START", "", "must be more than 0 (how far back the first run reads, such as 24h or 7d)")
	case c.Overlap < 0 || c.Overlap > 24*time.Hour:
		return nil, e.errorf("DEFENDER_OVERLAP", c.Overlap.String(), "must be between 0 and 24h (10m is the default)")
	case c.Interval < time.Second:
		return nil, e.errorf("DEFENDER_INTERVAL", c.Interval.String(), "must be at least 1s")
	case c.StateDir == "":
		return nil, e.errorf("DEFENDER_STATE_DIR", "", "must not be empty")
	}
	if c.LogLevel, err = ParseLevel(e.LogLevel); err != nil {
		return nil, e.errorf("DEFENDER_LOG_LEVEL", e.LogLevel, "must be debug, info, warn or error")
	}
	if c.LogFormat = strings.ToLower(c.LogFormat); c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, e.errorf("DEFENDER_LOG_FORMAT", e.LogFormat, "must be text or json")
	}
	if c.Input == "" {
		c.Input = e.TenantID
	}
	return c, nil
}

// ParseLevel reads debug, info, warn(ing) or error.
func ParseLevel(s string) (slog.Level, error) {
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
