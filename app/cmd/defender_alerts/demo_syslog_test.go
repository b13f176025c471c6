package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"ta-defender-alerts/app/siem/siemtest"
)

// demo --output syslog runs the real pipeline into the demo's syslog receiver: the detections
// it shows as they arrive are valid CEF (or LEEF) for the strict parsers, and every current
// alert version arrived.
func TestDemoSyslog(t *testing.T) {
	for _, tt := range []struct {
		format string
		parse  func(string) error
	}{
		{"cef", func(s string) error { _, err := siemtest.ParseCEF(s); return err }},
		{"leef", func(s string) error { _, err := siemtest.ParseLEEF(s); return err }},
	} {
		t.Run(tt.format, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"demo", "--output", "syslog", "--format", tt.format, "--duration", "3s"}, nil, &out, &errb)
			if dir := regexp.MustCompile(`in (\S+)/syslog\.txt`).FindStringSubmatch(out.String()); dir != nil &&
				strings.HasPrefix(filepath.Base(dir[1]), "defender-alerts-demo-") {
				defer os.RemoveAll(dir[1]) // the demo's folder
			}
			if code != 0 {
				t.Fatalf("demo exit %d\n%s%s", code, out.String(), errb.String())
			}
			shown := 0
			for _, line := range strings.Split(out.String(), "\n") {
				if msg, ok := strings.CutPrefix(line, "received: "); ok {
					shown++
					if err := tt.parse(msg); err != nil {
						t.Errorf("a detection shown is not valid %s: %v\n%s", tt.format, err, msg)
					}
				}
			}
			if shown == 0 {
				t.Errorf("the demo showed no detection as it arrived:\n%s", out.String())
			}
			for _, want := range []string{"current versions missing        0", "messages not understood         0", "syslog.txt"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("demo output lacks %q:\n%s", want, out.String())
				}
			}
			if n := regexp.MustCompile(`detections received\s+(\d+)`).FindStringSubmatch(out.String()); n == nil || n[1] == "0" {
				t.Errorf("no detection count, or none:\n%s", out.String())
			}
		})
	}
}
