package defendertest

import (
	"bytes"
	_ "embed"
	"fmt"
	"strconv"
	"time"
)

// The template is Microsoft's documented example alert (with evidence), from
// shared/samples/microsoft-docs/mde_alert_get_by_id.verbatim.json, with "@NAME@" where a value
// varies from one alert to the next (see entities.go).
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

// endpointTmpl is the example alert cut at its "@NAME@" values.
var endpointTmpl = compileTmpl(templateJSON)

// A detector's alerts in the endpoint rendering: its title, category, detection source,
// detector id, MITRE techniques, threat family ("": null) and description. The first is the
// example's.
type detector struct {
	title, category, source, id, mitre, family, description string
}

var detectors = []detector{
	{"Low-reputation arbitrary code executed by signed executable", "Execution", "WindowsDefenderAtp", "17e10bbc-3a68-474a-8aad-faef14d43952", `["T1064","T1085","T1220"]`, "",
		"Binaries signed by Microsoft can be used to run low-reputation arbitrary code. This technique hides the execution of malicious code within a trusted process. As a result, the trusted process might exhibit suspicious behaviors, such as opening a listening port or connecting to a command-and-control (C&C) server."},
	{"Suspicious PowerShell command line", "Execution", "WindowsDefenderAtp", "4b3c2a19-8e7d-4f60-a5b4-c3d2e1f0a9b8", `["T1059.001"]`, "",
		"PowerShell ran with arguments that hide what it does: an encoded command, a hidden window and a policy bypass. Attackers use such command lines to download and start further tools."},
	{"Possible ransomware activity in the file system", "Ransomware", "WindowsDefenderAv", "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a", `["T1486","T1490"]`, "Lockbit",
		"A process renamed and rewrote many user files in a short time and deleted volume shadow copies, as ransomware does before it asks for payment."},
	{"Credential theft attempt from LSASS memory", "CredentialAccess", "WindowsDefenderAtp", "2e1f0a9b-8c7d-4e6f-a5b4-d3c2b1a0f9e8", `["T1003.001"]`, "",
		"A process opened the memory of the Local Security Authority process, where Windows keeps the credentials of signed-in users. Reading it lets an attacker reuse those credentials on other devices."},
	{"New scheduled task set to run a script", "Persistence", "WindowsDefenderAtp", "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d", `["T1053.005"]`, "",
		"A scheduled task was created that starts a script from a user-writable folder at every sign-in, a common way to keep malware running across restarts."},
	{"Emotet malware was detected", "Malware", "WindowsDefenderAv", "c5d4e3f2-a1b0-4c9d-8e7f-6a5b4c3d2e1f", `[]`, "Emotet",
		"Microsoft Defender Antivirus found Emotet, a banking trojan that spreads through malicious e-mail attachments and loads other malware."},
}

// endpointSeverities are the Alert API's severity values.
var endpointSeverities = []string{"Informational", "Low", "Medium", "High"}

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
	h := uint32(a.incident-1000) * 2654435761
	det := &detectors[int(h>>8)%len(detectors)]
	e := entitiesOf(a)
	return endpointTmpl.render(dst, func(dst []byte, name string) []byte {
		switch name {
		case "ID":
			return strconv.AppendQuote(dst, a.id)
		case "INCIDENT":
			return strconv.AppendInt(dst, int64(a.incident), 10)
		case "SEVERITY":
			return plainQuote(dst, endpointSeverities[int(h>>16)%len(endpointSeverities)])
		case "STATUS":
			return strconv.AppendQuote(dst, v.Status)
		case "DETECTION":
			return plainQuote(dst, det.source)
		case "DETECTOR":
			return plainQuote(dst, det.id)
		case "CATEGORY":
			return plainQuote(dst, det.category)
		case "THREAT":
			if det.family == "" {
				return append(dst, "null"...)
			}
			return plainQuote(dst, det.family)
		case "TITLE":
			return plainQuote(dst, det.title)
		case "MITRE":
			return append(dst, det.mitre...)
		case "DESCRIPTION":
			// The descriptions and notes are plain ASCII without quotes or backslashes: no
			// escaping needed.
			return append(appendNotes(append(append(dst, '"'), det.description...), a.pad, a.incident), '"')
		case "CREATED":
			return quoteTime(dst, a.created)
		case "FIRSTEVENT":
			return quoteTime(dst, a.created.Add(-2*time.Minute))
		case "LASTEVENT":
			return quoteTime(dst, a.created.Add(-time.Minute))
		case "LASTUPDATE":
			return quoteTime(dst, v.LastUpdate)
		case "CMD":
			return plainQuote(dst, `rundll32.exe  c:\\temp\\`+e.fileName()+`,RepeatAfterMe`)
		}
		return e.value(dst, name)
	})
}

// FormatTime writes times the way the API does: UTC, trailing zeros of the fraction dropped.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.9999999Z") }

// quoteTime appends t as FormatTime writes it, as a JSON string.
func quoteTime(dst []byte, t time.Time) []byte {
	return append(append(append(dst, '"'), FormatTime(t)...), '"')
}

// AlertID makes an id of the API's shape.
func AlertID(n int) string {
	return fmt.Sprintf("da%018d_%d", 637000000000000000+int64(n), 1000000000+n)
}
