package siem_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/siem/siemtest"
)

// fitFormat is one format as the fit tests see it: its encoders, and a parse into one map of
// every field (header fields included) with the free-text ones named.
type fitFormat struct {
	name   string
	append func(dst []byte, d *siem.Detection) []byte
	fit    func(dst []byte, d *siem.Detection, size int) ([]byte, bool)
	parse  func(line string) (map[string]string, error)
	free   []string // the keys of AlertTitle, Description, CommandLine, FilePath, FileName, Url
}

func fitFormats(t testing.TB) []fitFormat {
	cef := siem.NewCEF(siem.CEFOptions{})
	fs := []fitFormat{{name: "cef", append: cef.Append, fit: cef.AppendFit,
		parse: func(line string) (map[string]string, error) {
			e, err := siemtest.ParseCEF(line)
			if err != nil {
				return nil, err
			}
			m := map[string]string{"(vendor)": e.Vendor, "(product)": e.Product, "(version)": e.DeviceVersion,
				"(class)": e.ClassID, "(name)": e.Name, "(severity)": e.Severity}
			for k, v := range e.Ext {
				m[k] = v
			}
			return m, nil
		},
		free: []string{"(name)", "msg", "cs2", "filePath", "fname", "request"}}}
	for _, delim := range []byte{'^', ','} { // ',' turns into a three-byte U+FFFD
		l, err := siem.NewLEEF(siem.LEEFOptions{Delimiter: delim})
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, fitFormat{name: fmt.Sprintf("leef %q", delim), append: l.Append, fit: l.AppendFit,
			parse: func(line string) (map[string]string, error) {
				e, err := siemtest.ParseLEEF(line)
				if err != nil {
					return nil, err
				}
				m := map[string]string{"(vendor)": e.Vendor, "(product)": e.Product, "(version)": e.ProductVersion,
					"(event)": e.EventID}
				for k, v := range e.Attrs {
					m[k] = v
				}
				return m, nil
			},
			free: []string{"AlertTitle", "Description", "CommandLine", "FilePath", "FileName", "url"}})
	}
	return fs
}

// sampleDetection is the first detection of Microsoft's sample alert: real ids, hashes, links.
func sampleDetection(t testing.TB) siem.Detection {
	ds, err := siem.Build(sampleAlerts(t, "mde_alert_get_by_id.verbatim.json")[0])
	if err != nil {
		t.Fatal(err)
	}
	return ds[0]
}

// checkFit asserts what a shortened line must be against the full line: at most size bytes,
// valid for the strict parser, the same keys, every field but the free-text ones exactly the
// same, and each free-text one either the same or a prefix of it ending with "…". It returns
// the free-text keys that were cut.
func checkFit(t *testing.T, f fitFormat, full, short []byte, size int) []string {
	t.Helper()
	if len(short) > size {
		t.Fatalf("%s: %d bytes, want at most %d", f.name, len(short), size)
	}
	want, err := f.parse(string(full))
	if err != nil {
		t.Fatalf("%s: full line: %v", f.name, err)
	}
	got, err := f.parse(string(short))
	if err != nil {
		t.Fatalf("%s: the strict parser refuses the shortened line: %v\n%s", f.name, err, short)
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d fields, want the full line's %d", f.name, len(got), len(want))
	}
	var cut []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", f.name, k)
		case g == w:
		case !contains(f.free, k):
			t.Errorf("%s: %s = %.80q, want %.80q: only free text may be cut", f.name, k, g, w)
		case !strings.HasSuffix(g, "…") || !strings.HasPrefix(w, strings.TrimSuffix(g, "…")) || len(g) >= len(w)+len("…"):
			t.Errorf("%s: %s = %.80q: not a prefix of %.80q marked with …", f.name, k, g, w)
		default:
			cut = append(cut, k)
		}
	}
	return cut
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Hostile free text, long enough to need shortening, comes out at most size bytes, valid, the
// ids and times as they were, the cut fields marked.
func TestAppendFitShortensFreeText(t *testing.T) {
	long := strings.Repeat(`C:\Windows\system32\cmd.exe /c "echo a|b=c^d" é鍵🔥 `, 100)
	tests := []struct {
		name string
		give func(d *siem.Detection)
		size int
	}{
		{"long command line", func(d *siem.Detection) { d.CommandLine = long }, 1400},
		{"everything long", func(d *siem.Detection) {
			d.CommandLine, d.Description, d.FilePath, d.FileName, d.URL = long, long, long, long, long
			d.AlertTitle = strings.Repeat("title=|\\ ", 80)
		}, 1400},
		{"line breaks and tabs", func(d *siem.Detection) { d.Description = strings.Repeat("a\r\nb\tc\\n", 400) }, 900},
		{"invalid UTF-8", func(d *siem.Detection) { d.Description = strings.Repeat("bad \xff\xfe end ", 200) }, 1000},
		{"carets and pipes", func(d *siem.Detection) { d.FilePath = strings.Repeat("^|^,", 500) }, 1200},
	}
	for _, f := range fitFormats(t) {
		for _, tt := range tests {
			t.Run(f.name+"/"+tt.name, func(t *testing.T) {
				d := sampleDetection(t)
				tt.give(&d)
				full := f.append(nil, &d)
				if len(full) <= tt.size {
					t.Fatalf("the case does not need shortening: %d bytes", len(full))
				}
				short, ok := f.fit([]byte("keep"), &d, tt.size)
				if !ok || !bytes.HasPrefix(short, []byte("keep")) {
					t.Fatalf("ok %v, %.20q: want it to fit, appended to dst", ok, short)
				}
				if cut := checkFit(t, f, full, short[4:], tt.size); len(cut) == 0 {
					t.Error("nothing was cut")
				}
				if len(short[4:]) < tt.size-40 {
					t.Errorf("%d bytes for a size of %d: cut far more than needed", len(short)-4, tt.size)
				}
			})
		}
	}
}

// A line that fits is exactly Append's.
func TestAppendFitLeavesAFittingLine(t *testing.T) {
	for _, f := range fitFormats(t) {
		d := sampleDetection(t)
		full := f.append(nil, &d)
		for _, size := range []int{len(full), len(full) + 1, 8192} {
			if got, ok := f.fit(nil, &d, size); !ok || !bytes.Equal(got, full) {
				t.Errorf("%s size %d: ok %v, %q; want Append's line %q", f.name, size, ok, got, full)
			}
		}
	}
}

// Whatever the size, a cut falls between escapes and between a character's bytes: values made
// of nothing but escapes and multi-byte characters, at every size from the full line down to
// the shortest possible, parse and come back as prefixes.
func TestAppendFitNeverSplitsAnEscape(t *testing.T) {
	for _, f := range fitFormats(t) {
		d := sampleDetection(t)
		d.Description = strings.Repeat(`\=é|^,鍵🔥`, 60)
		d.CommandLine = strings.Repeat("=\\\n🔥", 90)
		d.AlertTitle = strings.Repeat(`|\鍵`, 50)
		full := f.append(nil, &d)
		smallest := 0
		for size := len(full) - 1; size > 0; size-- {
			short, ok := f.fit(nil, &d, size)
			if !ok {
				smallest = size + 1
				break
			}
			checkFit(t, f, full, short, size)
			if t.Failed() {
				t.Fatalf("%s: at size %d", f.name, size)
			}
		}
		if smallest == 0 {
			t.Fatalf("%s: fits any size", f.name)
		}
		t.Logf("%s: %d bytes full, %d at the smallest", f.name, len(full), smallest)
	}
}

// The longest field is cut first: a long description goes down to the level of the next
// longest field before that field is touched.
func TestAppendFitCutsTheLongestFirst(t *testing.T) {
	for _, f := range fitFormats(t) {
		d := sampleDetection(t)
		d.Description, d.CommandLine, d.FilePath = strings.Repeat("d", 1000), strings.Repeat("c", 300), ""
		full := f.append(nil, &d)
		short, _ := f.fit(nil, &d, len(full)-500)
		got, err := f.parse(string(short))
		if err != nil {
			t.Fatal(err)
		}
		desc, cmd := got[f.free[1]], got[f.free[2]]
		if len(desc) < 490 || len(desc) > 510 || cmd != d.CommandLine {
			t.Errorf("%s, 500 bytes over: description %d bytes, command line %d; want 500 off the description alone", f.name, len(desc), len(cmd))
		}
		short, _ = f.fit(nil, &d, len(full)-900)
		got, _ = f.parse(string(short))
		desc, cmd = got[f.free[1]], got[f.free[2]]
		if !strings.HasSuffix(cmd, "…") || len(desc)-len(cmd) > 1 || len(desc)-len(cmd) < -1 {
			t.Errorf("%s, 900 bytes over: description %d bytes, command line %d; want both cut to the same level", f.name, len(desc), len(cmd))
		}
	}
}

// When the fields that are never cut are too long by themselves, or the size too small, the
// detection does not fit, and AppendFit says so.
func TestAppendFitCannotFit(t *testing.T) {
	for _, f := range fitFormats(t) {
		d := sampleDetection(t)
		d.Description = strings.Repeat("x", 3000)
		if got, ok := f.fit(nil, &d, 100); ok || len(got) <= 100 {
			t.Errorf("%s size 100: ok %v with %d bytes, want it refused", f.name, ok, len(got))
		}
		d.FullID = strings.Repeat("F", 2000) // an id: never cut
		if got, ok := f.fit(nil, &d, 1400); ok || len(got) <= 1400 {
			t.Errorf("%s huge FullId: ok %v with %d bytes, want it refused", f.name, ok, len(got))
		}
	}
}

// FuzzAppendFit: whatever the free text and the size, AppendFit either fits (at most size
// bytes, valid for the strict parser, only free text cut, each cut marked) or says it cannot,
// and a line that fits as it is comes back unchanged.
func FuzzAppendFit(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v, strings.Repeat(v, 20), "x "+v, uint16(900))
	}
	f.Add("", "", "", uint16(0))
	f.Add(`\=`, "=", "é", uint16(700))
	base, formats := sampleDetection(f), fitFormats(f)
	f.Fuzz(func(t *testing.T, a, b, c string, size uint16) {
		d := base
		d.AlertTitle, d.Description, d.CommandLine, d.FilePath, d.FileName, d.URL = a, b, c, a+b, c, b
		for _, ff := range formats {
			full := ff.append(nil, &d)
			short, ok := ff.fit(nil, &d, int(size))
			switch {
			case len(full) <= int(size):
				if !ok || !bytes.Equal(short, full) {
					t.Fatalf("%s: a line that fits came back changed (ok %v)", ff.name, ok)
				}
			case ok:
				checkFit(t, ff, full, short, int(size))
			case len(short) <= int(size):
				t.Fatalf("%s: not ok, yet %d bytes for a size of %d", ff.name, len(short), size)
			}
		}
	})
}
