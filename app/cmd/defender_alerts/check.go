package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/statedir"
)

// check prints a checklist: configuration, token, one page of alerts, HEC health and token
// (or, with output syslog, the syslog receiver), the state folder.
func check(ctx context.Context, stdout, stderr io.Writer) int {
	ok := true
	mark := func(good bool, what, detail string) {
		if good {
			fmt.Fprintf(stdout, "✓ %s\n", what)
			return
		}
		ok = false
		fmt.Fprintf(stdout, "✗ %s\n    %s\n", what, detail)
	}
	cfg, err := config.FromEnv()
	if err != nil {
		mark(false, "configuration", err.Error())
		return 1
	}
	mark(true, "configuration (DEFENDER_* settings are valid)", "")
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, name := range cfg.Feeds {
		fc := cfg.ForFeed(name)
		rd, err := defender.New(fc.Defender)
		if err != nil {
			mark(false, name+": Defender client", fc.Explain(err).Error())
			continue // the other feeds are still checked
		}
		// Each feed's API has its own token scope and permission: each is checked.
		if err := rd.CheckToken(ctx); err != nil {
			mark(false, name+": Entra ID token for "+rd.Endpoints().TokenURL, err.Error())
			continue
		}
		mark(true, name+": Entra ID token ("+fc.Defender.TenantID+", scope "+rd.Endpoints().Scope+")", "")
		n, err := rd.Probe(ctx, time.Now())
		if err != nil {
			mark(false, name+": "+config.FeedTitle(name)+" at "+rd.Endpoints().API.String(), err.Error())
		} else {
			mark(true, fmt.Sprintf("%s: %s at %s (read %d alert of the last day)", name, config.FeedTitle(name), rd.Endpoints().API, n), "")
		}
	}
	if cfg.Output == "syslog" {
		checkSyslog(ctx, cfg, mark, stdout)
	} else if !checkHEC(ctx, cfg, mark, stdout) {
		return 1
	}
	if dir := cfg.StateDir; dir != "" {
		if err := statedir.Prepare(dir); err != nil {
			mark(false, "state folder "+dir, err.Error()+" (or set DEFENDER_STATE_DIR to another folder)")
		} else {
			mark(true, "state folder "+dir, "")
		}
	}
	if !ok {
		return 1
	}
	return 0
}

// checkHEC checks each HEC URL's health and the token; false when the client cannot be made.
func checkHEC(ctx context.Context, cfg *config.Config, mark func(good bool, what, detail string), stdout io.Writer) bool {
	hc, err := hec.New(cfg.HEC)
	if err != nil {
		mark(false, "HEC client", cfg.Explain(err).Error())
		return false
	}
	defer hc.Close()
	for _, w := range hc.Warnings() {
		fmt.Fprintf(stdout, "! %s\n", w)
	}
	for _, h := range hc.Health(ctx) {
		switch {
		case h.Err == nil:
			mark(true, "HEC at "+h.URL+" is healthy and accepts the token", "")
		case !h.Up:
			mark(false, "HEC at "+h.URL, h.Err.Error())
		default:
			mark(false, "HEC token at "+h.URL, h.Err.Error())
		}
	}
	return true
}
