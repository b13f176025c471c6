package siem_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/siem/siemtest"
)

func newLEEF(t testing.TB, o siem.LEEFOptions) *siem.LEEF {
	t.Helper()
	l, err := siem.NewLEEF(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func parseLEEF(t testing.TB, line []byte) *siemtest.LEEFEvent {
	t.Helper()
	e, err := siemtest.ParseLEEF(string(line))
	if err != nil {
		t.Fatalf("strict parser refuses the encoder's line: %v\n%s", err, line)
	}
	return e
}

// checkLEEF asserts that a parsed line gives back d: every text field under its key, with
// only the documented replacements (and usrName's cut at 255).
func checkLEEF(t testing.TB, d *siem.Detection, e *siemtest.LEEFEvent, delim byte) {
	t.Helper()
	if e.Vendor != "Microsoft" || e.Product != "Microsoft Defender ATP" || e.ProductVersion != "2.0" {
		t.Errorf("header %q|%q|%q", e.Vendor, e.Product, e.ProductVersion)
	}
	if e.Delimiter != rune(delim) {
		t.Errorf("delimiter %q, want %q", e.Delimiter, delim)
	}
	wantID := wantClassID(d)
	if want := wantLEEF(wantID, 255, 0); e.EventID != want { // the delimiter is free in the header
		t.Errorf("EventID %q, want %q", e.EventID, want)
	}
	for _, f := range textFields {
		k, limit := f.name, 0
		if p, ok := leefKey[f.name]; ok {
			k = p
		}
		if k == "usrName" {
			limit = 255
		}
		if got, want := e.Attrs[k], wantLEEF(*f.ptr(d), limit, delim); got != want {
			t.Errorf("%s in %s: got %q, want %q", f.name, k, got, want)
		}
	}
	if got, want := e.Attrs["devTime"], wantMillis(d.AlertTime, 13, 13); got != want {
		t.Errorf("devTime %q, want %q", got, want)
	}
	if got, want := e.Attrs["LastProcessedTimeUtc"], wantMillis(d.LastProcessedTimeUTC, 1, 15); got != want {
		t.Errorf("LastProcessedTimeUtc %q, want %q", got, want)
	}
}

// TestLEEFRoundTripOfHostileValues: every hostile value in every field passes the strict
// parser (no delimiter, pipe, tab, caret or line break left in a value) and comes back with
// only the documented replacements, for the default caret, a tab and a comma as delimiter.
func TestLEEFRoundTripOfHostileValues(t *testing.T) {
	for _, delim := range []byte{'^', '\t', ','} {
		l := newLEEF(t, siem.LEEFOptions{Delimiter: delim})
		for name, v := range hostileValues {
			t.Run(strconv.Quote(string(delim))+"/"+name, func(t *testing.T) {
				d := hostileDetection(v)
				e := parseLEEF(t, l.Append(nil, &d))
				checkLEEF(t, &d, e, delim)
				if e.Attrs["WasExecutingWhileDetected"] != "true" || e.Attrs["RemediationIsSuccess"] != "false" {
					t.Errorf("flags %q %q", e.Attrs["WasExecutingWhileDetected"], e.Attrs["RemediationIsSuccess"])
				}
			})
		}
	}
}

func TestLEEFLine(t *testing.T) {
	at := time.Date(2021, 1, 26, 20, 31, 32, 956266100, time.UTC)
	tests := []struct {
		name string
		opt  siem.LEEFOptions
		give siem.Detection
		want string
	}{
		{"defaults", siem.LEEFOptions{}, siem.Detection{IoaDefinitionID: "d", Severity: "High", AlertTime: at},
			"LEEF:2.0|Microsoft|Microsoft Defender ATP|2.0|d|^|devTime=1611693092956^sev=8^Severity=High^IoaDefinitionId=d^AlertPart=0"},
		{"tab delimiter written in hex", siem.LEEFOptions{Delimiter: '\t'}, siem.Detection{IoaDefinitionID: "d"},
			"LEEF:2.0|Microsoft|Microsoft Defender ATP|2.0|d|x09|IoaDefinitionId=d\tAlertPart=0"},
		{"settable header, forbidden characters replaced", siem.LEEFOptions{Vendor: "a|b", Product: "p^q", Version: "v\t1"},
			siem.Detection{IoaDefinitionID: "x|y"},
			"LEEF:2.0|a¦b|pˆq|v 1|x¦y|^|IoaDefinitionId=x¦y^AlertPart=0"},
		{"src takes IPv4 and IPv6, canonical", siem.LEEFOptions{}, siem.Detection{IoaDefinitionID: "d", IPAddress: "2001:DB8::1"},
			"LEEF:2.0|Microsoft|Microsoft Defender ATP|2.0|d|^|src=2001:db8::1^IoaDefinitionId=d^AlertPart=0"},
		{"no sev for UnSpecified", siem.LEEFOptions{}, siem.Detection{IoaDefinitionID: "d", Severity: "UnSpecified"},
			"LEEF:2.0|Microsoft|Microsoft Defender ATP|2.0|d|^|Severity=UnSpecified^IoaDefinitionId=d^AlertPart=0"},
		{"no devTime of fewer than 13 digits", siem.LEEFOptions{}, siem.Detection{IoaDefinitionID: "d", AlertTime: time.Unix(86400, 0), LastProcessedTimeUTC: time.Unix(86400, 0)},
			"LEEF:2.0|Microsoft|Microsoft Defender ATP|2.0|d|^|IoaDefinitionId=d^AlertPart=0^LastProcessedTimeUtc=86400000"},
		{"equals signs stay", siem.LEEFOptions{}, siem.Detection{IoaDefinitionID: "d", Description: "a=b"},
			"LEEF:2.0|Microsoft|Microsoft Defender ATP|2.0|d|^|IoaDefinitionId=d^Description=a=b^AlertPart=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := newLEEF(t, tt.opt).Append(nil, &tt.give)
			if string(line) != tt.want {
				t.Errorf("got  %q\nwant %q", line, tt.want)
			}
			parseLEEF(t, line)
		})
	}
}

func TestLEEFRefusesABadDelimiter(t *testing.T) {
	for _, c := range []byte{'=', '|', '.', ':', 'a', '5', ' ', '\n', 0x7f, 0xc3} {
		if _, err := siem.NewLEEF(siem.LEEFOptions{Delimiter: c}); !errors.Is(err, siem.ErrDelimiter) {
			t.Errorf("delimiter %q: err %v, want ErrDelimiter", c, err)
		}
	}
}

// TestLEEFUserNameIsCutTo255: usrName's limit, with the cut mark.
func TestLEEFUserNameIsCutTo255(t *testing.T) {
	d := siem.Detection{IoaDefinitionID: "d", UserName: strings.Repeat("ü", 300)}
	e := parseLEEF(t, newLEEF(t, siem.LEEFOptions{}).Append(nil, &d))
	if got := e.Attrs["usrName"]; got != strings.Repeat("ü", 254)+"…" {
		t.Errorf("usrName %q", got)
	}
}
