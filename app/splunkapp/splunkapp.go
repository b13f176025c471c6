// Package splunkapp is the binary's life as a Splunk modular input: its scheme, the
// validation of an input's settings, and a run of one input. Secrets typed into an input are
// moved to Splunk's password storage on the first run and the input's fields masked.
package splunkapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/memlimit"
	"ta-defender-alerts/app/modinput"
	"ta-defender-alerts/app/netaddr"
	"ta-defender-alerts/app/procs"
	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/splunkd"
	"ta-defender-alerts/app/version"
	"ta-defender-alerts/app/wiring"
)

const (
	// Scheme is the input's scheme name; stanzas are [defender_alerts://<name>].
	Scheme = "defender_alerts"
	// appName is the app's id, and the realm of its secrets.
	appName = "TA-defender-alerts"
	realm   = appName
	// mask replaces a stored secret in the input's settings.
	mask = "********"
)

// isSecret reports whether a field's value must be stored rather than kept in inputs.conf.
func isSecret(field, v string) bool {
	switch field {
	case "certificate":
		return config.IsPEM(v)
	case "proxy_url":
		// Any user part is stored, decided on the string: a password with an unescaped '%',
		// '#', '/' or '?' does not parse, and must not stay in inputs.conf for that.
		return netaddr.RedactURL(v) != v
	}
	return v != ""
}

const maxPart = 255 // Splunk's own add-on library splits longer values into parts

// secrets reads and writes one input's secrets in storage/passwords. It asks splunkd only
// for this input's own entries, by name (realm:<input>/<field>: and its numbered parts), never
// for the list, which would hand over every clear password the session can read.
type secrets struct {
	sc    *splunkd.Client
	input string
}

func (s *secrets) user(field string) string { return s.input + "/" + field }

func partName(base string, i int) string { return fmt.Sprintf("%s#%d", base, i) }

// get returns a stored value, whole or from its parts (#1, #2, … up to the first missing).
func (s *secrets) get(ctx context.Context, field string) (string, bool, error) {
	v, ok, err := s.sc.Password(ctx, realm, s.user(field))
	if err != nil || ok {
		return v.Reveal(), ok, err
	}
	var b strings.Builder
	for i := 1; ; i++ {
		v, ok, err := s.sc.Password(ctx, realm, partName(s.user(field), i))
		if err != nil {
			return "", false, err
		}
		if !ok {
			return b.String(), i > 1, nil
		}
		b.WriteString(v.Reveal())
	}
}

// put stores a value, in parts of 255 characters when longer, and removes the other form and
// the parts an earlier, longer value left.
func (s *secrets) put(ctx context.Context, field, v string) error {
	base := s.user(field)
	parts := 0
	if len(v) <= maxPart {
		if err := s.sc.SetPassword(ctx, realm, base, secret.String(v)); err != nil {
			return err
		}
	} else {
		for ; parts*maxPart < len(v); parts++ {
			if err := s.sc.SetPassword(ctx, realm, partName(base, parts+1), secret.String(v[parts*maxPart:min(len(v), (parts+1)*maxPart)])); err != nil {
				return err
			}
		}
		if err := s.sc.DeletePassword(ctx, realm, base); err != nil {
			return err
		}
	}
	return s.dropParts(ctx, base, parts+1)
}

// dropParts deletes base's parts from #from on. They are found by asking for each in turn
// and deleted last first, so that a deletion that fails leaves no gap, behind which a part
// would never be found again.
func (s *secrets) dropParts(ctx context.Context, base string, from int) error {
	last := from - 1
	for {
		_, ok, err := s.sc.Password(ctx, realm, partName(base, last+1))
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		last++
	}
	for i := last; i >= from; i-- {
		if err := s.sc.DeletePassword(ctx, realm, partName(base, i)); err != nil {
			return err
		}
	}
	return nil
}

// resolve replaces masked secrets by the stored ones and returns the fields holding a new
// secret in plain text.
func resolve(ctx context.Context, s *secrets, params map[string]string) (fresh []string, err error) {
	for _, f := range secretFields {
		v := strings.TrimSpace(params[f])
		switch {
		case v == mask:
			stored, ok, err := s.get(ctx, f)
			if err != nil {
				return nil, fmt.Errorf("%s is masked, and reading Splunk's password storage failed: %w", f, err)
			}
			if !ok {
				return nil, fmt.Errorf("%s shows %s but no stored value was found (realm %s, user %s): enter it again", f, mask, realm, s.user(f))
			}
			params[f] = stored
		case isSecret(f, v):
			fresh = append(fresh, f)
		}
	}
	return fresh, nil
}

// inputName is the stanza name without the scheme.
func inputName(stanza string) string { return strings.TrimPrefix(stanza, Scheme+"://") }

// sourceDefault makes an unset source the stanza's name (defender_alerts://<name>), the
// source splunkd itself gives a modular input's events, so that several tenants' inputs stay
// apart in one index; a source set in the stanza is kept.
func sourceDefault(params map[string]string, stanza string) {
	if strings.TrimSpace(params["source"]) == "" {
		params["source"] = stanza
	}
}

// certPath resolves a certificate path inside the app's folder.
func certPath(params map[string]string, appDir string) error {
	c := strings.TrimSpace(params["certificate"])
	if c == "" || config.IsPEM(c) || c == mask {
		return nil
	}
	p := c
	if !filepath.IsAbs(p) {
		p = filepath.Join(appDir, p)
	}
	p = filepath.Clean(p)
	rel, err := filepath.Rel(appDir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return &config.Error{Var: "certificate", Value: c, Msg: "must be PEM text or a file inside this app's folder (" + appDir + ")"}
	}
	params["certificate"] = p
	return nil
}

func appDir(splunkHome, app string) string {
	if app == "" {
		app = appName
	}
	return filepath.Join(splunkHome, "etc", "apps", app)
}

func splunkHome() string {
	if h := os.Getenv("SPLUNK_HOME"); h != "" {
		return h
	}
	return "/opt/splunk"
}

// Validate answers --validate-arguments: it writes an <error> and returns 1 when a setting is
// wrong, and tries the credentials where it can.
func Validate(ctx context.Context, stdin io.Reader, stdout io.Writer) int {
	v, err := modinput.ParseValidation(stdin)
	if err != nil {
		_ = modinput.WriteError(stdout, err.Error())
		return 1
	}
	if err := validateItem(ctx, v.ServerURI, v.SessionKey, v.Item.Name, appName, v.Item.Params, v.CheckpointDir); err != nil {
		_ = modinput.WriteError(stdout, err.Error())
		return 1
	}
	return 0
}

func validateItem(ctx context.Context, serverURI, sessionKey, name, app string, params map[string]string, cpDir string) error {
	params = copyMap(params)
	needStore := false
	for _, f := range secretFields {
		needStore = needStore || strings.TrimSpace(params[f]) == mask
	}
	if needStore {
		sc, err := splunkd.New(serverURI, secret.String(sessionKey), app, splunkHome(), nil)
		if err != nil {
			return err
		}
		if _, err := resolve(ctx, &secrets{sc: sc, input: inputName(name)}, params); err != nil {
			return err
		}
	}
	if err := certPath(params, appDir(splunkHome(), app)); err != nil {
		return err
	}
	if cpDir == "" {
		cpDir = os.TempDir()
	}
	cfg, err := config.FromParams(params, cpDir, inputName(name))
	if err != nil {
		return err
	}
	rd, err := defender.New(cfg.Defender)
	if err != nil {
		return cfg.Explain(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := rd.CheckToken(tctx); bridge.NeedsFix(err) {
		return err // an actionable refusal; a network failure is not the settings' fault
	}
	return nil
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// runGiveUp bounds how long a run lets one batch wait for HEC (retries, an ack that does not
// come): a run is one drain, like run --once, and must end. Tests shrink it.
var runGiveUp = 5 * time.Minute

// Run is a run of the input: secrets to storage, one drain, exit. Each stanza logs at its
// own log_level (info until the stanza is read).
func Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(modinput.NewLogHandler(stderr, slog.LevelInfo))
	in, err := modinput.ParseInput(stdin)
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	events := modinput.NewEventWriter(stdout)
	defer events.Close()
	code := 0
	for _, st := range in.Stanzas {
		level := new(slog.LevelVar) // info
		l := slog.New(modinput.NewLogHandler(stderr, level)).With("input", inputName(st.Name))
		err := stanzaLevel(st, level)
		if err == nil {
			err = runStanza(ctx, in, st, events, l)
		}
		if err != nil {
			var ce *config.Error
			l.Error(err.Error(), "needs_fix", bridge.NeedsFix(err) || errors.As(err, &ce))
			code = 1
		}
	}
	return code
}

// stanzaLevel sets level to the stanza's log_level; a bad one stops the input before it
// does anything, as every other bad setting does.
func stanzaLevel(st modinput.Stanza, level *slog.LevelVar) error {
	l, err := config.ParamLogLevel(st.Params)
	if err != nil {
		return err
	}
	level.Set(l)
	return nil
}

func runStanza(ctx context.Context, in *modinput.Input, st modinput.Stanza, events *modinput.EventWriter, log *slog.Logger) error {
	name := inputName(st.Name)
	app := st.App
	if app == "" {
		app = appName
	}
	params := copyMap(st.Params)
	sc, err := splunkd.New(in.ServerURI, secret.String(in.SessionKey), app, splunkHome(), log)
	if err != nil {
		return err
	}
	sec := &secrets{sc: sc, input: name}
	fresh, err := resolve(ctx, sec, params)
	if err != nil {
		return err
	}
	back := storedBefore(ctx, sec, params, fresh)
	if len(fresh) > 0 {
		// Move the new secrets to storage, then mask them in the input; without both, stop:
		// a secret must not stay in inputs.conf while the input runs as if all were well.
		masked := map[string]string{}
		for _, f := range fresh {
			if err := sec.put(ctx, f, strings.TrimSpace(params[f])); err != nil {
				return fmt.Errorf("%s could not be stored in Splunk's password storage, so the input does not run while it sits in inputs.conf: %w", f, err)
			}
			masked[f] = mask
		}
		if err := sc.UpdateInput(ctx, Scheme, name, masked); err != nil {
			return fmt.Errorf("the secrets were stored, but masking them in the input failed, so the input does not run while they sit in inputs.conf: %w", err)
		}
		sort.Strings(fresh)
		log.Info("secrets moved to Splunk's password storage and masked in the input", "fields", strings.Join(fresh, ","), "realm", realm)
	}
	warnClearSecrets(log, back, appDir(splunkHome(), app), st.Name)
	if err := certPath(params, appDir(splunkHome(), app)); err != nil {
		return err
	}
	sourceDefault(params, st.Name)
	cfg, err := config.FromParams(params, in.CheckpointDir, name)
	if err != nil {
		return err
	}
	log = log.With("feed", cfg.Feed)
	memlimit.Set(os.LookupEnv, 1, cfg.HECWindow()) // room for the stanza's window (stanzas run one at a time)
	procs.Set(os.LookupEnv, 1)
	cfg.Defender.OnRetryAfter = bridge.LogRetryAfter(log)
	cfg.HEC.OnRetry = bridge.LogHECRetry(log)
	cfg.Defender.GiveUpAfter, cfg.HEC.GiveUpAfter = runGiveUp, runGiveUp // a run must end, a throttled read too
	c, err := wiring.New(cfg, log, &wiring.Stdout{Events: events, Stanza: st.Name})
	if err != nil {
		return cfg.Explain(err)
	}
	defer c.Close()
	p := c.Pump
	log.Debug("settings", "source", cfg.HEC.Source, "sourcetype", cfg.HEC.Sourcetype, "index", cfg.HEC.Index, "host", cfg.HEC.Host,
		"start", cfg.Start.String(), "overlap", cfg.Overlap.String(), "log_level", cfg.LogLevel.String())
	start := []any{"version", version.Version, "output", cfg.Output, "api", c.Defender.Endpoints().API.String(), "checkpoint", c.Store.Path()}
	if n, err := strconv.Atoi(strings.TrimSpace(st.Params["interval"])); err == nil && n > 0 {
		start = append(start, "interval_s", n) // the saved search "input not committing" reads it
	}
	log.Info("run starting", start...)
	// Within its run the input rides out what clears by itself (throttling, expired tokens,
	// 5xx, HEC busy or down) and stops at once for what needs a fix.
	err = bridge.Persist(ctx, log, time.Second, 30*time.Second, runGiveUp, p.Drain)
	s := p.Stats()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("run failed; the checkpoint holds what was confirmed (%d alerts): %w", s.Confirmed, err)
	}
	log.Info("run done", "read", s.Read, "confirmed", s.Confirmed, "rejected", s.Rejected, "skipped_as_delivered", s.Skipped, "watermark", s.Watermark.Format(time.RFC3339))
	return nil
}
