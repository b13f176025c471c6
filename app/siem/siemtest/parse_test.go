package siemtest_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"ta-defender-alerts/app/siem/siemtest"
)

const cefHead = "CEF:0|Microsoft|Microsoft Defender ATP|2.0|id|Name|5|"

func TestParseCEFAccepts(t *testing.T) {
	tests := []struct {
		name string
		give string
		want map[string]string
	}{
		{"no extension", cefHead, map[string]string{}},
		{"spaces inside values", cefHead + "msg=a b  c cat=x", map[string]string{"msg": "a b  c", "cat": "x"}},
		{"escapes", cefHead + `msg=a\=b\\c\nd\re|f`, map[string]string{"msg": "a=b\\c\nd\re|f"}},
		{"a trailing space before the next key stays", cefHead + "msg=a  cat=x", map[string]string{"msg": "a ", "cat": "x"}},
		{"the last value loses trailing spaces", cefHead + "msg=a  ", map[string]string{"msg": "a"}},
		{"empty value", cefHead + "msg= cat=", map[string]string{"msg": "", "cat": ""}},
		{"rt in epoch ms", cefHead + "rt=1611693092956", map[string]string{"rt": "1611693092956"}},
		{"rt in MMM dd yyyy HH:mm:ss", cefHead + "rt=Jan 26 2021 20:31:32", map[string]string{"rt": "Jan 26 2021 20:31:32"}},
		{"IPv4 src, IPv6 c6a2", cefHead + "src=10.0.0.1 c6a2=2001:db8::1", map[string]string{"src": "10.0.0.1", "c6a2": "2001:db8::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := siemtest.ParseCEF(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e.Ext, tt.want) {
				t.Errorf("got %q, want %q", e.Ext, tt.want)
			}
		})
	}
	e, err := siemtest.ParseCEF(`CEF:0|a\|b|c\\d|1|id|n=m|Very-High|`)
	if err != nil || e.Vendor != "a|b" || e.Product != `c\d` || e.Name != "n=m" || e.Severity != "Very-High" {
		t.Errorf("header: %+v, %v", e, err)
	}
}

// TestParseCEFRejects: each rule of the standard the parser enforces refuses a line.
func TestParseCEFRejects(t *testing.T) {
	tests := []struct{ name, give string }{
		{"no prefix", "CEF0|a|b|c|d|e|5|"},
		{"bad version", "CEF:2|a|b|c|d|e|5|"},
		{"short header", "CEF:0|a|b|c|d|e|"},
		{"unknown header escape", `CEF:0|a\=|b|c|d|e|5|`},
		{"line break in header", "CEF:0|a|b|c|d|e\nf|5|"},
		{"vendor over 63", "CEF:0|" + strings.Repeat("v", 64) + "|b|c|d|e|5|"},
		{"version over 31", "CEF:0|a|b|" + strings.Repeat("1", 32) + "|d|e|5|"},
		{"name over 512", "CEF:0|a|b|c|d|" + strings.Repeat("n", 513) + "|5|"},
		{"empty class id", "CEF:0|a|b|c||e|5|"},
		{"severity 11", "CEF:0|a|b|c|d|e|11|"},
		{"severity word", "CEF:0|a|b|c|d|e|Critical|"},
		{"severity 05", "CEF:0|a|b|c|d|e|05|"},
		{"unescaped = in a value", cefHead + "msg=a=b"},
		{"unescaped = after an escape", cefHead + `msg=x\nb=c`},
		{"unknown escape", cefHead + `msg=a\tb`},
		{"lone backslash", cefHead + `msg=a\`},
		{"raw line break", cefHead + "msg=a\nb"},
		{"unknown key", cefHead + "msg=a forged=b"},
		{"key twice", cefHead + "msg=a msg=b"},
		{"no key first", cefHead + " msg=a"},
		{"externalId over 40", cefHead + "externalId=" + strings.Repeat("1", 41)},
		{"cs2 over 4000", cefHead + "cs2=" + strings.Repeat("x", 4001)},
		{"rt in ISO 8601", cefHead + "rt=2021-01-26T20:31:32Z"},
		{"IPv6 in src", cefHead + "src=2001:db8::1"},
		{"IPv4 in c6a2", cefHead + "c6a2=10.0.0.1"},
		{"cn1 not a number", cefHead + "cn1=yes"},
		{"invalid UTF-8", cefHead + "msg=\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := siemtest.ParseCEF(tt.give); !errors.Is(err, siemtest.ErrCEF) {
				t.Errorf("accepted: %+v (err %v)", e, err)
			}
		})
	}
}

const leefHead = "LEEF:2.0|Microsoft|Microsoft Defender ATP|2.0|id|^|"

func TestParseLEEFAccepts(t *testing.T) {
	tests := []struct {
		name  string
		give  string
		delim rune
		want  map[string]string
	}{
		{"caret", leefHead + "a=1^b=x=y", '^', map[string]string{"a": "1", "b": "x=y"}},
		{"hex x09", "LEEF:2.0|V|P|1|id|x09|a=1\tb=2", '\t', map[string]string{"a": "1", "b": "2"}},
		{"hex 0x2C", "LEEF:2.0|V|P|1|id|0x2C|a=1,b=2", ',', map[string]string{"a": "1", "b": "2"}},
		{"1.0 uses tab", "LEEF:1.0|V|P|1|id|a=1\tb=2", '\t', map[string]string{"a": "1", "b": "2"}},
		{"predefined keys", leefHead + "devTime=1611693092956^sev=10^src=2001:db8::1^identSrc=10.0.0.1^identHostName=h", '^',
			map[string]string{"devTime": "1611693092956", "sev": "10", "src": "2001:db8::1", "identSrc": "10.0.0.1", "identHostName": "h"}},
		{"devTime with devTimeFormat", leefHead + "devTime=2021-01-26^devTimeFormat=yyyy-MM-dd", '^',
			map[string]string{"devTime": "2021-01-26", "devTimeFormat": "yyyy-MM-dd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := siemtest.ParseLEEF(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if e.Delimiter != tt.delim || !reflect.DeepEqual(e.Attrs, tt.want) {
				t.Errorf("got %q %q, want %q %q", e.Delimiter, e.Attrs, tt.delim, tt.want)
			}
		})
	}
}

func TestParseLEEFRejects(t *testing.T) {
	tests := []struct{ name, give string }{
		{"no prefix", "LEEF:3.0|V|P|1|id|^|a=1"},
		{"short header", "LEEF:2.0|V|P|1|id"},
		{"empty event id", "LEEF:2.0|V|P|1||^|a=1"},
		{"event id over 255", "LEEF:2.0|V|P|1|" + strings.Repeat("e", 256) + "|^|a=1"},
		{"caret in a header field", "LEEF:2.0|V^|P|1|id|^|a=1"},
		{"two-character delimiter", "LEEF:2.0|V|P|1|id|^^|a=1"},
		{"bad hex delimiter", "LEEF:2.0|V|P|1|id|x12345|a=1"},
		{"value holding the delimiter", leefHead + "cmd=a ^ b^c=1"},
		{"value holding a pipe", leefHead + "cmd=a|b"},
		{"value holding a tab", leefHead + "cmd=a\tb"},
		{"value holding a caret (tab delimiter)", "LEEF:2.0|V|P|1|id|x09|cmd=a^b"},
		{"line break", leefHead + "cmd=a\nb"},
		{"key of two words", leefHead + "my key=1"},
		{"key twice", leefHead + "a=1^a=2"},
		{"trailing delimiter", leefHead + "a=1^"},
		{"sev 0", leefHead + "sev=0"},
		{"sev 11", leefHead + "sev=11"},
		{"devTime ISO without format", leefHead + "devTime=2021-01-26T20:31:32Z"},
		{"devTime of 12 digits", leefHead + "devTime=161169309295"},
		{"src not an address", leefHead + "src=host"},
		{"usrName over 255", leefHead + "usrName=" + strings.Repeat("u", 256)},
		{"identHostName without identSrc", leefHead + "identHostName=h"},
		{"invalid UTF-8", leefHead + "a=\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := siemtest.ParseLEEF(tt.give); !errors.Is(err, siemtest.ErrLEEF) {
				t.Errorf("accepted: %+v (err %v)", e, err)
			}
		})
	}
}
