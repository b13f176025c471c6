package defendertest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The template is Microsoft's documented example alert (with evidence), from
// shared/samples/microsoft-docs/mde_alert_get_by_id.verbatim.json.
//
//go:embed testdata/alert_template.json
var templateJSON []byte

// Version is one state of an alert: what the API shows once VisibleAt has passed.
type Version struct {
	LastUpdate time.Time
	VisibleAt  time.Time
	Status     string
}

type alert struct {
	id       string
	incident int
	created  time.Time
	versions []Version      // oldest first
	pad      int            // extra description bytes, for size variety
	nested   []*nestedAlert // IncidentsMode: the incident's alerts
}

// visible returns the newest version visible at now, or false.
func (a *alert) visible(now time.Time) (Version, bool) {
	for i := len(a.versions) - 1; i >= 0; i-- {
		if !a.versions[i].VisibleAt.After(now) {
			return a.versions[i], true
		}
	}
	return Version{}, false
}

// template parts: the compacted example alert cut at the fields that vary.
var tmplParts = func() [][]byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, templateJSON); err != nil {
		panic(err)
	}
	s := buf.Bytes()
	var parts [][]byte
	for _, cut := range [][]byte{
		[]byte(`"da637472900382838869_1364969609"`), // id
		[]byte(`1126093`),                        // incidentId
		[]byte(`"New"`),                          // status
		[]byte(`(C&C) server.`),                  // end of the description: notes go after it
		[]byte(`"2021-01-26T20:33:57.7220239Z"`), // alertCreationTime
		[]byte(`"2021-01-26T20:31:32.9562661Z"`), // firstEventTime
		[]byte(`"2021-01-26T20:31:33.0577322Z"`), // lastEventTime
		[]byte(`"2021-01-26T20:33:59.2Z"`),       // lastUpdateTime
	} {
		i := bytes.Index(s, cut)
		if i < 0 {
			panic("template field not found: " + string(cut))
		}
		parts = append(parts, s[:i])
		s = s[i+len(cut):]
	}
	return append(parts, s)
}()

// notes vary alert sizes (2–5 KB, as real alerts with evidence are) with text that reads
// like an alert's and does not repeat itself wholesale.
var notes = []string{
	" The process was launched from a user-writable folder shortly after a document was opened.",
	" A similar binary was seen on %d other devices in the last 30 days.",
	" The parent process spawned PowerShell with an encoded command (length %d).",
	" Network connections to %d distinct remote addresses followed within two minutes.",
	" The file's signer is valid but the certificate was issued %d days ago.",
	" Scheduled task persistence was attempted %d seconds after first execution.",
}

func appendNotes(dst []byte, n int, seed int) []byte {
	for i := 0; n > 0; i++ {
		before := len(dst)
		note := notes[(seed+i)%len(notes)]
		if bytes.Contains([]byte(note), []byte("%d")) {
			dst = fmt.Appendf(dst, note, (seed*31+i*17)%997+3)
		} else {
			dst = append(dst, note...)
		}
		n -= len(dst) - before
	}
	return dst
}

// render appends the alert's JSON in version v.
func render(dst []byte, a *alert, v Version) []byte {
	appendTime := func(dst []byte, t time.Time) []byte {
		dst = append(dst, '"')
		dst = append(dst, FormatTime(t)...)
		return append(dst, '"')
	}
	dst = append(dst, tmplParts[0]...)
	dst = strconv.AppendQuote(dst, a.id)
	dst = append(dst, tmplParts[1]...)
	dst = strconv.AppendInt(dst, int64(a.incident), 10)
	dst = append(dst, tmplParts[2]...)
	dst = strconv.AppendQuote(dst, v.Status)
	dst = append(dst, tmplParts[3]...)
	dst = append(dst, "(C&C) server."...)
	dst = appendNotes(dst, a.pad, a.incident)
	dst = append(dst, tmplParts[4]...)
	dst = appendTime(dst, a.created)
	dst = append(dst, tmplParts[5]...)
	dst = appendTime(dst, a.created.Add(-2*time.Minute))
	dst = append(dst, tmplParts[6]...)
	dst = appendTime(dst, a.created.Add(-time.Minute))
	dst = append(dst, tmplParts[7]...)
	dst = appendTime(dst, v.LastUpdate)
	return append(dst, tmplParts[8]...)
}

// FormatTime writes times the way the API does: UTC, trailing zeros of the fraction dropped.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.9999999Z") }

// AlertID makes an id of the API's shape.
func AlertID(n int) string {
	return fmt.Sprintf("da%018d_%d", 637000000000000000+int64(n), 1000000000+n)
}
