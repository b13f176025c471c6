package siem_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/siem/siemtest"
)

// fuzzDetection spreads four fuzzed strings over the fields, so that neighbouring keys get
// different values.
func fuzzDetection(a, b, c, ip string) siem.Detection {
	d := hostileDetection("")
	for i, f := range textFields {
		*f.ptr(&d) = [...]string{a, b, c}[i%3]
	}
	d.IPAddress = ip
	return d
}

func addHostileSeeds(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v, "x "+v, v+" ", "10.0.0.1")
	}
	f.Add("", "", "", "2001:db8::1")
	f.Add("   ", "\\", "=", "::ffff:1.2.3.4")
}

// FuzzCEFRoundTrip: the strict parser accepts every line the encoder writes, and gives back
// every mapped field as documented (exact, or cut).
func FuzzCEFRoundTrip(f *testing.F) {
	addHostileSeeds(f)
	enc := siem.NewCEF(siem.CEFOptions{})
	f.Fuzz(func(t *testing.T, a, b, c, ip string) {
		d := fuzzDetection(a, b, c, ip)
		checkCEF(t, &d, parseCEF(t, enc.Append(nil, &d)))
	})
}

// FuzzLEEFRoundTrip: the same for LEEF, with any delimiter NewLEEF accepts.
func FuzzLEEFRoundTrip(f *testing.F) {
	addHostileSeeds(f)
	f.Fuzz(func(t *testing.T, a, b, c, ip string) {
		delim := byte('^')
		if len(ip) > 0 && ip[0] != 0 { // 0 asks for the default
			delim = ip[0]
		}
		l, err := siem.NewLEEF(siem.LEEFOptions{Delimiter: delim})
		if err != nil {
			if !errors.Is(err, siem.ErrDelimiter) {
				t.Fatal(err)
			}
			return
		}
		d := fuzzDetection(a, b, c, ip)
		checkLEEF(t, &d, parseLEEF(t, l.Append(nil, &d)), delim)
	})
}

// FuzzBuild: arbitrary JSON never panics the builder; an alert it refuses is ErrAlert; every
// detection it makes is valid JSON with the alert's id, and both encoders' lines parse.
func FuzzBuild(f *testing.F) {
	for _, name := range []string{"mde_alert_get_by_id.verbatim.json",
		"mde_list_alerts_example1_default.parsed.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, a := range sampleAlerts(f, "mde_list_alerts_example2_top10_expand_evidence.parsed.json") {
		f.Add([]byte(a))
	}
	f.Add(alertJSON(`,"evidence":[` + procEvidence + `,{"entityType":"Ip","ipAddress":"::1"}]`))
	f.Add([]byte(`{"id":"a|b=c\\","lastUpdateTime":"2024-01-01T00:00:00Z","title":"x\ny^z","evidence":[{},null]}`))
	cef := siem.NewCEF(siem.CEFOptions{})
	leef, err := siem.NewLEEF(siem.LEEFOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, alert []byte) {
		ds, err := siem.Build(alert)
		if err != nil {
			if !errors.Is(err, siem.ErrAlert) {
				t.Fatalf("error without ErrAlert: %v", err)
			}
			return
		}
		if len(ds) == 0 {
			t.Fatal("no detection")
		}
		for i := range ds {
			js, err := ds[i].AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				AlertID string `json:"AlertId"`
			}
			if err := json.Unmarshal(js, &back); err != nil || back.AlertID != ds[i].AlertID {
				t.Fatalf("JSON %s: %v", js, err)
			}
			if _, err := siemtest.ParseCEF(string(cef.Append(nil, &ds[i]))); err != nil {
				t.Fatal(err)
			}
			if _, err := siemtest.ParseLEEF(string(leef.Append(nil, &ds[i]))); err != nil {
				t.Fatal(err)
			}
		}
	})
}
