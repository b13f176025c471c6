package defendertest

import (
	_ "embed"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// IncidentsMode's tenant and list call: GET /api/incidents of the Defender XDR API, as
// docs/graph-and-incidents-api.md (section 2) describes it. The records are incidents made by
// the same generator as the alerts (AddAlerts, Update, UpdateAt, visibility, orders), each
// grouping 1 to 5 alerts, and every IncidentBigEvery-th IncidentBigSize; an incident's update
// either leaves its nested alerts as they were or changes one of them (a new lastUpdatedTime
// and status), as UpdateIncident says.

const (
	// XDRCommercial is the commercial cloud's Defender XDR API host: a token's audience in
	// IncidentsMode by default (its scope is XDRCommercial + "/.default").
	XDRCommercial = "https://api.security.microsoft.com"
	// IncidentsMaxTop is the documented largest $top; a larger one is a 400.
	IncidentsMaxTop = 100
	// IncidentsPerMinute and IncidentsPerHour are the documented quotas.
	IncidentsPerMinute = 50
	IncidentsPerHour   = 1500
	// IncidentBigSize alerts are grouped in every IncidentBigEvery-th incident AddAlerts makes.
	IncidentBigSize  = 50
	IncidentBigEvery = 25
	incidentsPath    = "/api/incidents"
	// incidentBase numbers the incidents: the first made is incidentBase+1.
	incidentBase = 924520
)

var (
	//go:embed testdata/incident_template.json
	incidentTemplateJSON []byte
	//go:embed testdata/incident_alert_template.json
	incidentAlertTemplateJSON []byte

	incidentTmpl      = compileTmpl(incidentTemplateJSON)
	incidentAlertTmpl = compileTmpl(incidentAlertTemplateJSON)
)

// nestedAlert is an alert inside an incident, with its own versions.
type nestedAlert struct {
	id       string
	n        int // its number, for variety
	created  time.Time
	versions []nestedVersion // oldest first
	pad      int
}

type nestedVersion struct {
	lastUpdated time.Time
	status      string
}

// at returns the alert's version as of an incident version stamped t: the newest one not
// after t (a nested alert changes only together with its incident, at the incident's time).
func (n *nestedAlert) at(t time.Time) nestedVersion {
	v := n.versions[0]
	for _, x := range n.versions[1:] {
		if x.lastUpdated.After(t) {
			break
		}
		v = x
	}
	return v
}

// NestedVersion is one version of an alert nested in an incident.
type NestedVersion struct {
	AlertID     string
	LastUpdated time.Time
	Status      string
}

var (
	incidentStatuses = []string{"Active", "InProgress", "Resolved"}
	incidentSeverity = []string{"Informational", "Low", "Medium", "High"}
	xdrVerdicts      = [][2]string{{"TruePositive", "Malware"}, {"FalsePositive", "Clean"}, {"TruePositive", "Phishing"}, {"TruePositive", "SecurityTesting"}}
	// The services of nested alerts, in the XDR API's names (not Graph's).
	xdrServices = []struct{ source, detection, title, category string }{
		{"MicrosoftDefenderATP", "WindowsDefenderAv", "'Mimikatz' hacktool was detected", "Malware"},
		{"MicrosoftCloudAppSecurity", "MCAS", "Impossible travel activity", "InitialAccess"},
		{"OfficeATP", "OfficeATP", "Email messages containing malicious URL removed after delivery", "InitialAccess"},
		{"AzureATP", "AzureATP", "Suspected brute-force attack (Kerberos, NTLM)", "CredentialAccess"},
	}
)

// defaultIncidentSize is how many alerts the k-th incident groups.
func defaultIncidentSize(k int) int {
	if k%IncidentBigEvery == 0 {
		return IncidentBigSize
	}
	return 1 + int(uint32(k)*2654435761>>16)%5
}

// AddIncidents creates n incidents (IncidentsMode) whose first version has a lastUpdateTime
// (and createdTime) from at(i), the i-th grouping size(i) alerts (nil: 1 to 5, and
// IncidentBigSize for every IncidentBigEvery-th incident). It returns the incident ids.
func (s *Server) AddIncidents(n int, at func(i int) time.Time, size func(i int) int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addIncidentsLocked(n, at, size)
}

func (s *Server) addIncidentsLocked(n int, at func(i int) time.Time, size func(i int) int) []string {
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		s.nextN++
		k := s.nextN
		t := at(i).UTC().Truncate(100 * time.Nanosecond)
		a := &alert{id: strconv.Itoa(incidentBase + k), incident: incidentBase + k, created: t, pad: s.rng.IntN(400)}
		a.versions = []Version{{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: "Active"}}
		m := defaultIncidentSize(k)
		if size != nil {
			m = size(i)
		}
		for j := 0; j < m; j++ {
			s.nextAlert++
			created := t.Add(-time.Duration(m-j) * time.Second)
			a.nested = append(a.nested, &nestedAlert{id: AlertID(s.nextAlert), n: s.nextAlert, created: created, pad: s.rng.IntN(600),
				versions: []nestedVersion{{lastUpdated: created.Add(500 * time.Millisecond), status: "New"}}})
		}
		s.alerts = append(s.alerts, a)
		s.byID[a.id] = a
		ids[i] = a.id
	}
	s.changes++
	return ids
}

// UpdateIncident gives an incident a new version stamped t (at least 100 ns after its last),
// in a random status. alert < 0 leaves its nested alerts as they were (the incident's
// lastUpdateTime moves, theirs do not); otherwise its alert-th nested alert gets a new version
// stamped with the same time.
func (s *Server) UpdateIncident(id string, t time.Time, alert int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byID[id]; a != nil {
		s.updateIncidentLocked(a, t, alert)
		s.changes++
	}
}

func (s *Server) updateIncidentLocked(a *alert, t time.Time, alert int) {
	t = t.UTC().Truncate(100 * time.Nanosecond)
	if last := a.versions[len(a.versions)-1].LastUpdate; !t.After(last) {
		t = last.Add(100 * time.Nanosecond)
	}
	a.versions = append(a.versions, Version{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: incidentStatuses[s.rng.IntN(len(incidentStatuses))]})
	if alert >= 0 && alert < len(a.nested) {
		na := a.nested[alert]
		na.versions = append(na.versions, nestedVersion{lastUpdated: t, status: statuses[s.rng.IntN(len(statuses))]})
	}
	s.stats.Updates++
}

// NestedAlerts returns the alerts an incident shows in its version stamped t (IncidentsMode).
func (s *Server) NestedAlerts(id string, t time.Time) []NestedVersion {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.byID[id]
	if a == nil {
		return nil
	}
	out := make([]NestedVersion, len(a.nested))
	for i, n := range a.nested {
		v := n.at(t)
		out[i] = NestedVersion{AlertID: n.id, LastUpdated: v.lastUpdated, Status: v.status}
	}
	return out
}

// incidentView is what an incident version shows besides its times.
type incidentView struct {
	status, severity, classification, determination string
	assignedTo                                      string // "": null
}

func viewIncident(a *alert, v Version) incidentView {
	h := uint32(a.incident) * 2654435761
	iv := incidentView{status: v.Status, severity: incidentSeverity[int(h>>16)%len(incidentSeverity)], classification: "Unknown", determination: "NotAvailable"}
	if iv.status != "Active" {
		iv.assignedTo = analysts[int(h>>4)%len(analysts)]
	}
	if iv.status == "Resolved" {
		vd := xdrVerdicts[int(h>>12)%len(xdrVerdicts)]
		iv.classification, iv.determination = vd[0], vd[1]
	}
	return iv
}

// renderIncident appends the incident's JSON in version v, its alerts as of v.
func renderIncident(dst []byte, a *alert, v Version) []byte {
	iv := viewIncident(a, v)
	return incidentTmpl.render(dst, func(dst []byte, name string) []byte {
		switch name {
		case "ID":
			return strconv.AppendInt(dst, int64(a.incident), 10)
		case "NAME":
			if len(a.nested) == 0 {
				return plainQuote(dst, "Incident without alerts")
			}
			sv := xdrServices[a.nested[0].n%len(xdrServices)]
			if len(a.nested) == 1 {
				return plainQuote(dst, sv.title+" on one endpoint")
			}
			return plainQuote(dst, fmt.Sprintf("Multi-stage incident involving %s on multiple endpoints (%d alerts)", sv.category, len(a.nested)))
		case "CREATED":
			return quoteTime(dst, a.created)
		case "LASTUPDATE":
			return quoteTime(dst, v.LastUpdate)
		case "ASSIGNED":
			if iv.assignedTo == "" {
				return append(dst, "null"...)
			}
			return plainQuote(dst, iv.assignedTo)
		case "CLASSIFICATION":
			return plainQuote(dst, iv.classification)
		case "DETERMINATION":
			return plainQuote(dst, iv.determination)
		case "STATUS":
			return plainQuote(dst, iv.status)
		case "SEVERITY":
			return plainQuote(dst, iv.severity)
		case "ALERTS":
			dst = append(dst, '[')
			for i, n := range a.nested {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = renderNested(dst, a, n, n.at(v.LastUpdate))
			}
			return append(dst, ']')
		}
		panic("defendertest: unknown placeholder " + name)
	})
}

// renderNested appends a nested alert in version nv: its bytes depend on nothing but the
// alert and nv, so an incident update that leaves it alone repeats it byte for byte.
func renderNested(dst []byte, a *alert, n *nestedAlert, nv nestedVersion) []byte {
	sv := xdrServices[n.n%len(xdrServices)]
	return incidentAlertTmpl.render(dst, func(dst []byte, name string) []byte {
		switch name {
		case "ALERTID":
			return plainQuote(dst, n.id)
		case "INCIDENT":
			return strconv.AppendInt(dst, int64(a.incident), 10)
		case "SERVICE":
			return plainQuote(dst, sv.source)
		case "DETECTION":
			return plainQuote(dst, sv.detection)
		case "TITLE":
			return plainQuote(dst, sv.title)
		case "CATEGORY":
			return plainQuote(dst, sv.category)
		case "CREATED":
			return quoteTime(dst, n.created)
		case "LASTUPDATED":
			return quoteTime(dst, nv.lastUpdated)
		case "RESOLVED":
			if nv.status != "Resolved" {
				return append(dst, "null"...)
			}
			return quoteTime(dst, nv.lastUpdated)
		case "FIRSTACTIVITY":
			return quoteTime(dst, n.created.Add(-3*time.Minute))
		case "LASTACTIVITY":
			return quoteTime(dst, n.created.Add(-time.Minute))
		case "DESCRIPTION":
			dst = append(dst, `"Readily available tools, such as hacking programs, can be used by unauthorized individuals to spy on users.`...)
			return append(appendNotes(dst, n.pad, n.n), '"')
		case "STATUS":
			return plainQuote(dst, nv.status)
		case "SEVERITY":
			return plainQuote(dst, incidentSeverity[1+n.n%3])
		}
		panic("defendertest: unknown placeholder " + name)
	})
}

// incidentsNotFound answers any other path in IncidentsMode, the Alert API's included.
func (s *Server) incidentsNotFound(w http.ResponseWriter, r *http.Request) {
	apiError(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("No HTTP resource was found that matches the request URI '%s'.", r.URL.Path))
}

// incidentsHead writes the reply's headers and the page's opening.
func (s *Server) incidentsHead(w http.ResponseWriter, buf []byte) []byte {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	buf = append(buf, `{"@odata.context":"`...)
	buf = append(buf, s.URL...)
	return append(buf, `/api/$metadata#Incidents","value":[`...)
}
