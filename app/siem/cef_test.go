package siem_test

import (
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/siem/siemtest"
)

func parseCEF(t testing.TB, line []byte) *siemtest.CEFEvent {
	t.Helper()
	e, err := siemtest.ParseCEF(string(line))
	if err != nil {
		t.Fatalf("strict parser refuses the encoder's line: %v\n%s", err, line)
	}
	return e
}

// checkCEF asserts that a parsed line gives back d: each mapped field exactly, or as the
// documented change (cut to the key's limit; header line breaks as spaces; the last value's
// trailing spaces, which never applies while rt comes last).
func checkCEF(t testing.TB, d *siem.Detection, e *siemtest.CEFEvent) {
	t.Helper()
	if e.Vendor != "Microsoft" || e.Product != "Microsoft Defender ATP" || e.DeviceVersion != "2.0" {
		t.Errorf("header %q|%q|%q, want Microsoft's mapping values", e.Vendor, e.Product, e.DeviceVersion)
	}
	if want := wantCEFHeader(wantClassID(d), 1023); e.ClassID != want {
		t.Errorf("class id %q, want %q", e.ClassID, want)
	}
	if want := wantCEFHeader(d.AlertTitle, 512); e.Name != want {
		t.Errorf("name %q, want %q", e.Name, want)
	}
	for _, f := range textFields {
		k, ok := cefKey[f.name]
		if !ok {
			continue
		}
		want := wantCut(*f.ptr(d), k.limit)
		if got := e.Ext[k.key]; got != want {
			t.Errorf("%s in %s: got %q, want %q", f.name, k.key, got, want)
		}
	}
	if got, want := e.Ext["rt"], wantMillis(d.AlertTime, 1, 15); got != want {
		t.Errorf("rt %q, want %q (epoch milliseconds, none before 1970)", got, want)
	}
	for _, l := range [][2]string{{"cs1Label", "ThreatName"}, {"cs2Label", "CommandLine"},
		{"cs3Label", "FullId"}, {"cs4Label", "Actor"}, {"cs5Label", "Md5"}, {"cs6Label", "Sha256"}} {
		if _, set := e.Ext[l[0][:3]]; set && e.Ext[l[0]] != l[1] {
			t.Errorf("%s = %q, want %q", l[0], e.Ext[l[0]], l[1])
		}
	}
}

// TestCEFRoundTripOfHostileValues: pipes, backslashes, equals signs, line breaks, tabs,
// carets, non-ASCII, invalid UTF-8, spaces and a 5,000-character command line in every field
// pass the strict parser and come back exactly, or cut to the key's limit, as documented.
func TestCEFRoundTripOfHostileValues(t *testing.T) {
	enc := siem.NewCEF(siem.CEFOptions{})
	for name, v := range hostileValues {
		t.Run(name, func(t *testing.T) {
			d := hostileDetection(v)
			e := parseCEF(t, enc.Append(nil, &d))
			checkCEF(t, &d, e)
			if e.Ext["cn1"] != "1" || e.Ext["cn2"] != "0" {
				t.Errorf("cn1=%q cn2=%q, want 1 and 0", e.Ext["cn1"], e.Ext["cn2"])
			}
		})
	}
}

// TestCEFCommandLineIsCutTo4000: the 5,000-character command line arrives as its first 3,999
// characters and "…" (cs2's limit is 4,000).
func TestCEFCommandLineIsCutTo4000(t *testing.T) {
	long := strings.Repeat("x", 5000)
	d := siem.Detection{AlertTitle: "t", CommandLine: long}
	e := parseCEF(t, siem.NewCEF(siem.CEFOptions{}).Append(nil, &d))
	if got := e.Ext["cs2"]; got != long[:3999]+"…" {
		t.Errorf("cs2 has %d bytes, ends %q", len(got), got[len(got)-5:])
	}
}

func TestCEFHeader(t *testing.T) {
	tests := []struct {
		name string
		opt  siem.CEFOptions
		give siem.Detection
		want string // the line's start
	}{
		{"defaults", siem.CEFOptions{}, siem.Detection{AlertTitle: "T", Severity: "High"},
			"CEF:0|Microsoft|Microsoft Defender ATP|2.0|T|T|8|"},
		{"settable", siem.CEFOptions{Vendor: "V", Product: "P", Version: "9"}, siem.Detection{AlertTitle: "T"},
			"CEF:0|V|P|9|T|T|Unknown|"},
		{"header escapes pipe and backslash, not equals", siem.CEFOptions{Vendor: `a|b\c=d`},
			siem.Detection{AlertTitle: `x|y\z=w`, IoaDefinitionID: "id", Severity: "Low"},
			`CEF:0|a\|b\\c=d|Microsoft Defender ATP|2.0|id|x\|y\\z=w|3|`},
		{"line breaks become spaces", siem.CEFOptions{}, siem.Detection{AlertTitle: "a\r\nb", Severity: "Medium"},
			"CEF:0|Microsoft|Microsoft Defender ATP|2.0|a  b|a  b|5|"},
		{"informational", siem.CEFOptions{}, siem.Detection{AlertTitle: "T", Severity: "Informational"},
			"CEF:0|Microsoft|Microsoft Defender ATP|2.0|T|T|1|"},
		{"unspecified", siem.CEFOptions{}, siem.Detection{AlertTitle: "T", Severity: "UnSpecified"},
			"CEF:0|Microsoft|Microsoft Defender ATP|2.0|T|T|Unknown|"},
		{"vendor cut to 63", siem.CEFOptions{Vendor: strings.Repeat("v", 70)}, siem.Detection{AlertTitle: "T"},
			"CEF:0|" + strings.Repeat("v", 62) + "…|"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := siem.NewCEF(tt.opt).Append(nil, &tt.give)
			if !strings.HasPrefix(string(line), tt.want) {
				t.Errorf("got  %s\nwant %s…", line, tt.want)
			}
			parseCEF(t, line)
		})
	}
}

func TestCEFExtension(t *testing.T) {
	at := time.Date(2021, 1, 26, 20, 31, 32, 956266100, time.UTC)
	tests := []struct {
		name string
		give siem.Detection
		want string // the extension
	}{
		{"IPv4 in src, rt in epoch ms last", siem.Detection{IPAddress: "10.1.2.3", AlertTime: at},
			"src=10.1.2.3 rt=1611693092956"},
		{"IPv4-mapped IPv6 in src", siem.Detection{IPAddress: "::ffff:10.1.2.3"}, "src=10.1.2.3"},
		{"IPv6 in c6a2", siem.Detection{IPAddress: "2001:DB8::1"},
			"c6a2=2001:db8::1 c6a2Label=Source IPv6 Address"},
		{"not an address: left out", siem.Detection{IPAddress: "10.1.2"}, ""},
		{"booleans as 1 and 0", siem.Detection{WasExecutingWhileDetected: new(bool), RemediationIsSuccess: ptr(true)},
			"cn1=0 cn1Label=WasExecutingWhileDetected cn2=1 cn2Label=RemediationIsSuccess"},
		{"extension escapes", siem.Detection{Category: "a=b\\c|d\ne\rf"}, `cat=a\=b\\c|d\ne\rf`},
		{"last value loses trailing spaces only without rt", siem.Detection{Description: "d  "}, "msg=d"},
		{"with rt the spaces stay", siem.Detection{Description: "d  ", AlertTime: at}, "msg=d   rt=1611693092956"},
		{"no rt before 1970", siem.Detection{Description: "d", AlertTime: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)}, "msg=d"},
		{"rt of few digits in 1970", siem.Detection{AlertTime: time.Unix(86400, 0)}, "rt=86400000"},
		{"externalId cut to 40", siem.Detection{AlertID: strings.Repeat("1", 41)},
			"externalId=" + strings.Repeat("1", 39) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.AlertTitle = "T"
			line := string(siem.NewCEF(siem.CEFOptions{}).Append(nil, &tt.give))
			_, ext, _ := strings.Cut(line, "|T|T|Unknown|")
			if ext != tt.want {
				t.Errorf("got  %q\nwant %q", ext, tt.want)
			}
			parseCEF(t, []byte(line))
		})
	}
}

func ptr[T any](v T) *T { return &v }
