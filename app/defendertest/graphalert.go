package defendertest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// GraphMode's rendering of the tenant's alerts: the same alerts and versions as the Alert
// API's, with Graph's field names and enums, from several services, with evidence of many
// @odata.type kinds.

// The alert template is Microsoft's alerts_v2 example (shared/samples/microsoft-docs/
// graph_alerts_v2_list_example.verbatim.json) with "@NAME@" where a value varies; the
// evidence kinds are the example's and others the evidence page names, and one
// (aiAgentEvidence) that it does not.
var (
	//go:embed testdata/graph_alert_template.json
	graphTemplateJSON []byte
	//go:embed testdata/graph_evidence.json
	graphEvidenceJSON []byte
)

// serviceSources are the serviceSource members; those after unknownFutureValue come back as
// it unless the caller sends Prefer: include-unknown-enum-members.
var serviceSources = []string{"unknown", "microsoftDefenderForEndpoint", "microsoftDefenderForIdentity",
	"microsoftDefenderForCloudApps", "microsoftDefenderForOffice365", "microsoft365Defender",
	"azureAdIdentityProtection", "microsoftAppGovernance", "dataLossPrevention", "unknownFutureValue",
	"microsoftDefenderForCloud"}

// A service's alerts: their share of the tenant (percent), detection source, title,
// category and evidence kinds.
type service struct {
	source, detection, title, category string
	share                              int
	evidence                           []string
	description                        string // plain ASCII, nothing JSON must escape
}

var services = []service{
	{"microsoftDefenderForEndpoint", "antivirus", "Suspicious execution of hidden file", "DefenseEvasion", 40, []string{"device", "file", "process", "registryKey"}, "A hidden file was run from a temporary folder by a process that does not usually start programs, a way to evade defenses."},
	{"microsoftDefenderForOffice365", "microsoftDefenderForOffice365", "Email messages containing malicious URL removed after delivery", "InitialAccess", 20, []string{"mailbox", "analyzedMessage", "url"}, "Messages with a link to a phishing site were delivered to mailboxes and later removed by automated investigation."},
	{"microsoftDefenderForIdentity", "microsoftDefenderForIdentity", "Suspected brute-force attack (Kerberos, NTLM)", "CredentialAccess", 10, []string{"user", "device", "ip"}, "Many failed Kerberos and NTLM authentications against several accounts came from one device in a short time."},
	{"microsoftDefenderForCloudApps", "cloudAppSecurity", "Impossible travel activity", "InitialAccess", 10, []string{"user", "ip", "cloudApplication"}, "The same user signed in from two countries within a time too short to travel between them."},
	{"azureAdIdentityProtection", "azureAdIdentityProtection", "Unfamiliar sign-in properties", "InitialAccess", 5, []string{"user", "ip"}, "A sign-in used properties (browser, location, network) not seen for this user before."},
	{"dataLossPrevention", "microsoftDataLossPrevention", "DLP policy match for document in SharePoint", "Exfiltration", 5, []string{"user", "file"}, "A document stored in SharePoint matched a data loss prevention policy for financial data."},
	{"microsoft365Defender", "microsoft365Defender", "Suspicious activity by an AI agent", "Execution", 3, []string{"aiAgent", "user"}, "An AI agent called tools in an order that matches known prompt-injection abuse."},
	{"microsoftDefenderForCloud", "microsoftDefenderForServers", "Suspicious process executed on a virtual machine", "Execution", 7, []string{"azureResource", "process", "ip"}, "A process with a suspicious command line was started on a virtual machine by a service account."},
}

// afterUnknownFuture are enum members added after unknownFutureValue, hidden without Prefer.
var afterUnknownFuture = map[string]bool{"microsoftDefenderForCloud": true, "microsoftDefenderForServers": true}

// tmpl is compacted JSON cut at its "@NAME@" values.
type tmpl struct {
	parts [][]byte // len(names)+1
	names []string
}

var placeholder = regexp.MustCompile(`"@[A-Z0-9]+@"`)

func compileTmpl(js []byte) tmpl {
	var buf bytes.Buffer
	if err := json.Compact(&buf, js); err != nil {
		panic("defendertest: a template is not JSON: " + err.Error())
	}
	b := buf.Bytes()
	var t tmpl
	last := 0
	for _, m := range placeholder.FindAllIndex(b, -1) {
		t.parts = append(t.parts, b[last:m[0]])
		t.names = append(t.names, string(b[m[0]+2:m[1]-2]))
		last = m[1]
	}
	t.parts = append(t.parts, b[last:])
	return t
}

func (t tmpl) render(dst []byte, value func(dst []byte, name string) []byte) []byte {
	for i, n := range t.names {
		dst = append(dst, t.parts[i]...)
		dst = value(dst, n)
	}
	return append(dst, t.parts[len(t.names)]...)
}

var (
	graphAlertTmpl = compileTmpl(graphTemplateJSON)
	evidenceTmpls  = func() map[string]tmpl {
		var kinds map[string]json.RawMessage
		if err := json.Unmarshal(graphEvidenceJSON, &kinds); err != nil {
			panic("defendertest: graph_evidence.json: " + err.Error())
		}
		m := map[string]tmpl{}
		for k, js := range kinds {
			m[k] = compileTmpl(js)
		}
		for _, sv := range services {
			for _, k := range sv.evidence {
				if _, ok := m[k]; !ok {
					panic("defendertest: no evidence template " + k)
				}
			}
		}
		return m
	}()
)

// gview is an alert version as Graph shows it, before enums are hidden.
type gview struct {
	svc                                             *service
	status, severity, classification, determination string
	assignedTo                                      string // "": null
	created, lastUpdate                             time.Time
}

func (g gview) enum(prop string) string {
	switch prop {
	case "status":
		return g.status
	case "severity":
		return g.severity
	case "classification":
		return g.classification
	case "determination":
		return g.determination
	}
	return g.svc.source
}

var (
	severities = []string{"informational", "low", "medium", "high"}
	verdicts   = [][2]string{{"truePositive", "malware"}, {"falsePositive", "notMalicious"}, {"truePositive", "phishing"}, {"informationalExpectedActivity", "securityTesting"}}
	analysts   = []string{"secops@contoso.com", "megan@contoso.com", "automation"}
)

// graphView derives the alert's Graph fields from its number (stable for the alert) and the
// version's status (changes with it).
func graphView(a *alert, v Version) gview {
	n := a.incident - 1000
	h := uint32(n) * 2654435761
	g := gview{created: a.created, lastUpdate: v.LastUpdate, classification: "unknown", determination: "unknown"}
	pick := int(h>>8) % 100
	for i := range services {
		if pick < services[i].share || i == len(services)-1 {
			g.svc = &services[i]
			break
		}
		pick -= services[i].share
	}
	g.severity = severities[int(h>>16)%len(severities)]
	g.status = strings.ToLower(v.Status[:1]) + v.Status[1:]
	if g.status != "new" {
		g.assignedTo = analysts[int(h>>4)%len(analysts)]
	}
	if g.status == "resolved" {
		vd := verdicts[int(h>>12)%len(verdicts)]
		g.classification, g.determination = vd[0], vd[1]
	}
	return g
}

// plainQuote quotes a string the stand-in made, which holds nothing JSON must escape, or
// holds it escaped already (a path's backslashes written as \\).
func plainQuote(dst []byte, s string) []byte {
	return append(append(append(dst, '"'), s...), '"')
}

// renderGraph appends the alert's Graph JSON in version v. Without allEnums, enum members
// after unknownFutureValue read unknownFutureValue.
func renderGraph(dst []byte, a *alert, v Version, allEnums bool) []byte {
	g := graphView(a, v)
	e := entitiesOf(a)
	enum := func(dst []byte, s string) []byte {
		if afterUnknownFuture[s] && !allEnums {
			s = "unknownFutureValue"
		}
		return plainQuote(dst, s)
	}
	return graphAlertTmpl.render(dst, func(dst []byte, name string) []byte {
		switch name {
		case "ID":
			return plainQuote(dst, a.id)
		case "INCIDENT":
			return append(strconv.AppendInt(append(dst, '"'), int64(a.incident), 10), '"')
		case "STATUS":
			return plainQuote(dst, g.status)
		case "SEVERITY":
			return plainQuote(dst, g.severity)
		case "CLASSIFICATION":
			return plainQuote(dst, g.classification)
		case "DETERMINATION":
			return plainQuote(dst, g.determination)
		case "SERVICE":
			return enum(dst, g.svc.source)
		case "DETECTION":
			return enum(dst, g.svc.detection)
		case "TITLE":
			return plainQuote(dst, g.svc.title)
		case "CATEGORY":
			return plainQuote(dst, g.svc.category)
		case "DESCRIPTION":
			// The notes are plain ASCII without quotes or backslashes: no escaping needed.
			dst = append(append(dst, '"'), g.svc.description...)
			return append(appendNotes(dst, a.pad, a.incident), '"')
		case "ASSIGNED":
			if g.assignedTo == "" {
				return append(dst, "null"...)
			}
			return plainQuote(dst, g.assignedTo)
		case "ALERTURL":
			dst = append(append(dst, `"https://security.microsoft.com/alerts/`...), a.id...)
			return append(dst, `?tid=b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c"`...)
		case "INCIDENTURL":
			dst = strconv.AppendInt(append(dst, `"https://security.microsoft.com/incidents/`...), int64(a.incident), 10)
			return append(dst, `?tid=b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c"`...)
		case "CREATED":
			return quoteTime(dst, a.created)
		case "LASTUPDATE":
			return quoteTime(dst, v.LastUpdate)
		case "RESOLVED":
			if g.status != "resolved" {
				return append(dst, "null"...)
			}
			return quoteTime(dst, v.LastUpdate)
		case "FIRSTACTIVITY": // milliseconds, as Graph writes activity times
			return quoteTime(dst, a.created.Add(-2*time.Minute).Truncate(time.Millisecond))
		case "LASTACTIVITY":
			return quoteTime(dst, a.created.Add(-time.Minute).Truncate(time.Millisecond))
		case "EVIDENCE":
			dst = append(dst, '[')
			for i, k := range g.svc.evidence {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = evidenceTmpls[k].render(dst, func(dst []byte, name string) []byte {
					if name == "CREATED" {
						return quoteTime(dst, a.created)
					}
					return e.value(dst, name)
				})
			}
			return append(dst, ']')
		}
		panic("defendertest: unknown placeholder " + name)
	})
}
