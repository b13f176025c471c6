package siem_test

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"ta-defender-alerts/app/siem"
)

// Expectations written from the package's documented rules, independently of its code: what
// each format must give back for a value.

// wantCut is v with invalid UTF-8 repaired and, past limit code points, its first limit-1 code
// points and "…".
func wantCut(v string, limit int) string {
	r := []rune(strings.ToValidUTF8(v, "\uFFFD"))
	if limit <= 0 || len(r) <= limit {
		return string(r)
	}
	return string(r[:limit-1]) + "…"
}

// wantCEFHeader is a CEF header field as a parser reads it back: cut, line breaks as spaces.
func wantCEFHeader(v string, limit int) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(wantCut(v, limit))
}

// wantLEEF is a LEEF value as a parser reads it back: cut (when limited), then tab, CR and LF
// as spaces, pipe as ¦, caret as ˆ, another delimiter as U+FFFD.
func wantLEEF(v string, limit int, delim byte) string {
	v = wantCut(v, limit)
	var b strings.Builder
	for _, r := range v {
		switch {
		case r == '\t' || r == '\r' || r == '\n':
			b.WriteRune(' ')
		case r == '|':
			b.WriteRune('¦')
		case r == '^':
			b.WriteRune('ˆ')
		case delim != 0 && r < utf8.RuneSelf && byte(r) == delim:
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// field is one text field of a detection, by its old SIEM API name.
type field struct {
	name string
	ptr  func(d *siem.Detection) *string
}

// textFields are the detection's text fields that CEF or LEEF carry.
var textFields = []field{
	{"AlertTitle", func(d *siem.Detection) *string { return &d.AlertTitle }},
	{"Category", func(d *siem.Detection) *string { return &d.Category }},
	{"Severity", func(d *siem.Detection) *string { return &d.Severity }},
	{"Source", func(d *siem.Detection) *string { return &d.Source }},
	{"ComputerDnsName", func(d *siem.Detection) *string { return &d.ComputerDNSName }},
	{"MachineName", func(d *siem.Detection) *string { return &d.MachineName }},
	{"MachineDomain", func(d *siem.Detection) *string { return &d.MachineDomain }},
	{"FileName", func(d *siem.Detection) *string { return &d.FileName }},
	{"FilePath", func(d *siem.Detection) *string { return &d.FilePath }},
	{"UserDomain", func(d *siem.Detection) *string { return &d.UserDomain }},
	{"UserName", func(d *siem.Detection) *string { return &d.UserName }},
	{"LogOnUsers", func(d *siem.Detection) *string { return &d.LogOnUsers }},
	{"Sha1", func(d *siem.Detection) *string { return &d.Sha1 }},
	{"Sha256", func(d *siem.Detection) *string { return &d.Sha256 }},
	{"Md5", func(d *siem.Detection) *string { return &d.Md5 }},
	{"ThreatName", func(d *siem.Detection) *string { return &d.ThreatName }},
	{"ThreatFamily", func(d *siem.Detection) *string { return &d.ThreatFamily }},
	{"Actor", func(d *siem.Detection) *string { return &d.Actor }},
	{"Url", func(d *siem.Detection) *string { return &d.URL }},
	{"AlertId", func(d *siem.Detection) *string { return &d.AlertID }},
	{"FullId", func(d *siem.Detection) *string { return &d.FullID }},
	{"IoaDefinitionId", func(d *siem.Detection) *string { return &d.IoaDefinitionID }},
	{"DeviceID", func(d *siem.Detection) *string { return &d.DeviceID }},
	{"MachineGroup", func(d *siem.Detection) *string { return &d.MachineGroup }},
	{"Description", func(d *siem.Detection) *string { return &d.Description }},
	{"CommandLine", func(d *siem.Detection) *string { return &d.CommandLine }},
	{"LinkToWDATP", func(d *siem.Detection) *string { return &d.LinkToWDATP }},
	{"LinkToMTP", func(d *siem.Detection) *string { return &d.LinkToMTP }},
}

// cefKey is where Microsoft's ArcSight mapping (and this package's documented additions) put a
// field in CEF's extension, with the key's limit.
var cefKey = map[string]struct {
	key   string
	limit int
}{
	"Category": {"cat", 1023}, "Source": {"sourceServiceName", 1023},
	"MachineName": {"shost", 1023}, "MachineDomain": {"sourceDnsDomain", 255},
	"FileName": {"fname", 1023}, "FilePath": {"filePath", 1023},
	"UserDomain": {"sntdom", 255}, "UserName": {"suser", 1023}, "LogOnUsers": {"suid", 1023},
	"Sha1": {"fileHash", 255}, "ThreatName": {"cs1", 4000}, "Actor": {"cs4", 4000},
	"Md5": {"cs5", 4000}, "Sha256": {"cs6", 4000}, "Url": {"request", 1023},
	"AlertId": {"externalId", 40}, "LinkToWDATP": {"flexString1", 1023},
	// additions
	"CommandLine": {"cs2", 4000}, "FullId": {"cs3", 4000}, "Description": {"msg", 1023},
	"DeviceID": {"deviceExternalId", 255},
}

// leefKey is where a field goes in LEEF: a predefined key, or its own name.
var leefKey = map[string]string{"Category": "cat", "UserName": "usrName",
	"ComputerDnsName": "resource", "Url": "url"}

// hostileDetection fills every text field with "<name>:" + v, so a field that lands under the
// wrong key shows, and sets the times and flags.
func hostileDetection(v string) siem.Detection {
	var d siem.Detection
	for _, f := range textFields {
		*f.ptr(&d) = f.name + ":" + v
	}
	d.AlertTime = time.Date(2024, 5, 1, 10, 0, 0, 123456700, time.UTC)
	d.LastProcessedTimeUTC = d.AlertTime.Add(time.Minute)
	yes, no := true, false
	d.WasExecutingWhileDetected, d.RemediationIsSuccess = &yes, &no
	return d
}

// hostileValues are the values the round trips carry.
var hostileValues = map[string]string{
	"pipes":          "a|b||c|",
	"backslashes":    `\ \\ a\|b \= \n end\`,
	"equals signs":   "x=y == z= cs1=forged",
	"line breaks":    "one\ntwo\r\nthree\r",
	"tabs":           "a\tb\t",
	"carets":         "^a^^b^",
	"non-ASCII":      "Schlüssel ungültig — 鍵 🔥 \u202e",
	"invalid UTF-8":  "bad \xff\xfe end",
	"spaces":         "  lead and trail  ",
	"injected key":   "value suser=admin rt=0",
	"5000-char line": strings.Repeat(`C:\Windows\system32\cmd.exe /c "echo a|b=c^d" `, 110)[:5000],
	"empty-looking":  "=",
	"punctuation":    "a,b;c:d/e.f-g#h@i!j~k*l",
}

// wantClassID is CEF's class id and LEEF's EventID: the detector, else the title, else
// "Unknown".
func wantClassID(d *siem.Detection) string {
	switch {
	case d.IoaDefinitionID != "":
		return d.IoaDefinitionID
	case d.AlertTitle != "":
		return d.AlertTitle
	}
	return "Unknown"
}

// wantMillis is t in epoch milliseconds when that has minDigits to maxDigits digits and t is
// not before 1970, else "" (the key is left out).
func wantMillis(t time.Time, minDigits, maxDigits int) string {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return ""
	}
	s := strconv.FormatInt(t.UnixMilli(), 10)
	if len(s) < minDigits || len(s) > maxDigits {
		return ""
	}
	return s
}
