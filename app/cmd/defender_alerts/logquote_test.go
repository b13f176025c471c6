package main

import (
	"bytes"
	"errors"
	"regexp"
	"testing"

	"ta-defender-alerts/app/config"
)

// A value that quotes someone else's text (HEC's reply, an API message) must come back whole
// from Splunk's automatic key=value extraction, which ends a quoted value at the next double
// quote and honours no backslash.
func TestTextLogValuesSurviveSplunksExtraction(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(&config.Config{LogFormat: "text"}, &b)
	log.Warn("HEC did not take a batch", "err", errors.New(`HTTP 503: "Server is busy" (code 9)`), "note", `said "wait"`)
	line := b.String()
	extract := regexp.MustCompile(`(\w+)="([^"]*)"`) // Splunk's default: a quoted value runs to the next double quote
	got := map[string]string{}
	for _, m := range extract.FindAllStringSubmatch(line, -1) {
		got[m[1]] = m[2]
	}
	for k, want := range map[string]string{"err": `HTTP 503: 'Server is busy' (code 9)`, "note": `said 'wait'`} {
		if got[k] != want {
			t.Errorf("%s extracts as %q, want %q\nline: %s", k, got[k], want, line)
		}
	}
}
