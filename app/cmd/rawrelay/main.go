// Command rawrelay is the benchmark's baseline: the bare minimum to move a backlog from the
// Alert API to HEC. It fetches pages ($top=10000, $skip), splits the alerts, wraps them as HEC
// envelopes and posts them with the product's batch size and gzip level: no checkpoint, no
// retries, no acks, no limiter. Settings come from the same DEFENDER_* variables.
package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/secret"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rawrelay:", err)
		os.Exit(1)
	}
}

func run() error {
	env := os.Getenv
	ctx := context.Background()
	cc := clientcredentials.Config{ClientID: env("DEFENDER_CLIENT_ID"), ClientSecret: env("DEFENDER_CLIENT_SECRET"),
		TokenURL: env("DEFENDER_LOGIN_URL") + "/" + env("DEFENDER_TENANT_ID") + "/oauth2/v2.0/token",
		Scopes:   []string{"https://api.securitycenter.microsoft.com/.default"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		return err
	}
	hc, err := hec.New(hec.Config{URLs: []string{env("DEFENDER_HEC_URL")}, Token: secret.String(env("DEFENDER_HEC_TOKEN")), Ack: hec.AckOff})
	if err != nil {
		return err
	}
	defer hc.Close()
	httpc := &http.Client{Timeout: 5 * time.Minute}
	post := func(b *hec.Batch) error {
		var z bytes.Buffer
		zw := hec.NewGzipWriter(&z)
		_, _ = zw.Write(b.Body())
		_ = zw.Close()
		req, _ := http.NewRequest(http.MethodPost, strings.TrimRight(env("DEFENDER_HEC_URL"), "/")+"/services/collector/event", &z)
		req.Header.Set("Authorization", "Splunk "+env("DEFENDER_HEC_TOKEN"))
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("X-Splunk-Request-Channel", "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
		resp, err := httpc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("HEC HTTP %d", resp.StatusCode)
		}
		return nil
	}
	to := time.Now().UTC()
	from := to.Add(-30 * 24 * time.Hour)
	filter := url.QueryEscape("lastUpdateTime ge " + defender.FilterTime(from) + " and lastUpdateTime lt " + defender.FilterTime(to))
	const top = 10000
	batch := hc.NewBatcher()
	for skip := 0; ; skip += top {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/alerts?$filter=%s&$top=%d&$skip=%d&$expand=evidence", env("DEFENDER_API_URL"), filter, top, skip), nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := httpc.Do(req)
		if err != nil {
			return err
		}
		n, err := defender.DecodePage(resp.Body, func(raw []byte, id string, t time.Time) error {
			if full := batch.Add(hec.Record{Time: t, Event: raw, ID: id}); full != nil {
				return post(full)
			}
			return nil
		})
		resp.Body.Close()
		if err != nil {
			return err
		}
		if n < top {
			break
		}
	}
	if last := batch.Flush(); last != nil {
		if err := post(last); err != nil {
			return err
		}
	}
	return nil
}
