// Package wiring assembles one input's collection: the Defender client as the pump's
// Source, HEC or the modular input's stream to splunkd as its Sink, the checkpoint, and the
// pump between them. run, run --once, the modular input and the demo are all assembled here,
// alike; it is the one place besides bridge that knows the feed and the sinks together.
package wiring

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/modinput"
	"ta-defender-alerts/app/syslog"
)

// Collector is one input's collection, assembled.
type Collector struct {
	Pump     *bridge.Pump
	Defender *defender.Client
	HEC      *hec.Client // nil when events go to splunkd
	Store    *checkpoint.Store
	syslog   *syslog.Writer // nil unless events go to syslog
	// Incidents counts the incidents feed's nested alerts (nil for other feeds).
	Incidents *IncidentStats
	sent      *checkpoint.Sent
	log       *slog.Logger
}

// Stdout is the modular input's stream to splunkd, where events go with output "stdout".
type Stdout struct {
	Events *modinput.EventWriter
	Stanza string // the input's stanza, named on every event
}

// SettingError is a setting the Defender or the HEC client refused; cfg.Explain names it
// as the caller's settings do.
type SettingError struct{ Err error }

func (e *SettingError) Error() string { return e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// New assembles the collection cfg describes, logging to log. Events go to HEC with
// cfg.Output "hec", to a syslog receiver with "syslog", else to splunkd through out. A caller sets its own give-up times and
// retry logging in cfg first. A setting a client refuses comes back as a *SettingError; the
// checkpoint's errors (locked, unwritable) as they are.
func New(cfg *config.Config, log *slog.Logger, out *Stdout) (*Collector, error) {
	rd, err := defender.New(cfg.Defender)
	if err != nil {
		return nil, &SettingError{err}
	}
	c := &Collector{Defender: rd, log: log}
	if len(cfg.ExcludeSources) > 0 {
		log.Warn("the alerts of these service sources are left out for good: only another feed (endpoint-alerts for Defender for Endpoint) indexes them, and removing the setting later does not bring back those already passed over",
			"excluded", strings.Join(cfg.ExcludeSources, ","))
	}
	var open bridge.OpenSink
	switch cfg.Output {
	case "syslog":
		o := cfg.Syslog
		if o.OnRetry == nil {
			o.OnRetry = func(err error, wait time.Duration) {
				log.Warn("the syslog receiver cannot be reached; trying again", "err", err, "wait", wait.String())
			}
		}
		k, err := newSyslogSink(o, cfg.SyslogFormat, cfg.SyslogHeader)
		if err != nil {
			return nil, &SettingError{err}
		}
		c.syslog, open = k.w, k.open
	case "hec":
		hc, err := hec.New(cfg.HEC)
		if err != nil {
			return nil, &SettingError{err}
		}
		for _, w := range hc.Warnings() {
			log.Warn(w)
		}
		c.HEC, open = hc, bridge.HECSink(hc, cfg.Linger)
	default:
		if out == nil {
			return nil, errors.New("events go to splunkd (output stdout), which only a modular input run can reach")
		}
		open = stdoutSink(out.Events, modinput.Event{Stanza: out.Stanza, Source: cfg.HEC.Source, Sourcetype: cfg.HEC.Sourcetype,
			Index: cfg.HEC.Index, Host: cfg.HEC.Host})
	}
	c.Store, err = checkpoint.Open(cfg.StateDir, cfg.Input)
	if err != nil {
		c.closeSink()
		return nil, err
	}
	src := excluding(bridge.DefenderSource(rd), cfg.ExcludeSources)
	if cfg.Detections {
		src = detectionSource{src: src, log: log}
	}
	if cfg.NestedSourcetype != "" {
		// Incidents: each nested alert version once (see incidents.go).
		c.sent, err = checkpoint.OpenSent(c.Store.SentPath(), SentHorizon, SentLimit, nil)
		if err != nil {
			c.closeSink()
			c.Store.Close()
			return nil, err
		}
		if c.sent.Restarted != "" {
			log.Warn("the journal of incident alerts sent had a damaged start (a power cut?) and was started over; alerts it held may be sent again once", "path", c.sent.Restarted)
		}
		c.Incidents = &IncidentStats{}
		src = incidentSource{src: src, sent: c.sent, alertSourcetype: cfg.NestedSourcetype, log: log, stats: c.Incidents}
		open = sentRecorder(open, c.sent, log)
	}
	c.Pump = bridge.New(bridge.Config{Store: c.Store, Log: log, Start: cfg.Start, Overlap: cfg.Overlap, TimeResolution: defender.TimeResolution,
		Clock: rd.APITime, DeadLetter: bridge.DeadLetterPath(cfg.StateDir, cfg.Input)}, src, open)
	return c, nil
}

// The memory of incident alerts sent keeps each alert's newest version for SentHorizon (by the
// version's own time; Defender XDR keeps its data 180 days) and at most SentLimit alerts (16
// bytes each: 32 MB). An alert it has forgotten is sent again when its incident changes.
const (
	SentHorizon = 180 * 24 * time.Hour
	SentLimit   = 2_000_000
)

// Close waits for the HEC client's deliveries, whose outcomes may still be committed, then
// for the pump's last save, then releases the checkpoint.
func (c *Collector) Close() {
	c.closeSink()
	c.Pump.Close()
	if c.sent != nil {
		if err := c.sent.Save(); err != nil {
			c.log.Warn("the memory of incident alerts sent cannot be saved; after a restart, alerts already sent may be sent again", "err", err)
		}
		c.sent.Close()
	}
	c.Store.Close()
}

// closeSink waits for the HEC client's deliveries, or flushes and closes the syslog
// connection (waiting up to its timeout for the receiver to take what was written).
func (c *Collector) closeSink() {
	if c.HEC != nil {
		c.HEC.Close()
	}
	if c.syslog != nil {
		c.syslog.Close(context.Background())
	}
}

// stdoutSink makes the modular input's stream to splunkd a Sink: events count as delivered
// once flushed to splunkd, 200 at a time and at the end of a window. Each alert is written
// compact (JSON whitespace outside strings removed), so splunkd's line breaking keeps it one
// event whatever layout the API sent; HEC, which takes events whole, gets the API's bytes.
func stdoutSink(w *modinput.EventWriter, meta modinput.Event) bridge.OpenSink {
	return func(report func(bridge.Outcome)) bridge.Sink {
		return &streamSink{s: modinput.NewStream(w, meta, 200, func(n int, last any, err error) {
			t, _ := last.(*bridge.Tag)
			report(bridge.Outcome{Last: t, N: n, Err: err})
		})}
	}
}

type streamSink struct {
	s   *modinput.Stream
	buf []byte // the compacted alert; the stream copies it, so it is reused
}

func (k *streamSink) Add(_ context.Context, r bridge.Record, t *bridge.Tag) error {
	k.buf = modinput.AppendCompactJSON(k.buf[:0], r.Data)
	return k.s.WriteAs(r.When(), r.Sourcetype, k.buf, t)
}

func (k *streamSink) Flush(context.Context) error { return k.s.Flush() }
