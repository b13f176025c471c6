package defender

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// What the Defender XDR incidents API says differently: its names, limits, hosts and error
// body (docs/graph-and-incidents-api.md, section 2), and the nested alerts an incident holds.
//
// Paging. Microsoft documents $filter (lastUpdateTime, createdTime, status, assignedTo), $top
// up to 100 and $skip, and neither $orderby, $count nor @odata.nextLink
// (https://learn.microsoft.com/defender-xdr/api-list-incidents). So the drain reads incidents
// exactly as it reads the Alert API: windows on lastUpdateTime, ties split by createdTime,
// count probes ($top=1 with $skip) as proofs, never an order trusted unproven. The choices
// this dialect makes explicit:
//   - $top: 100, the documented largest; a larger value is refused (Config.PageSize).
//   - $skip: no limit is documented, and none is assumed (maxSkip 0), as for the Alert API on
//     the same host. With pages of 100 a page's count probe skips at most 100; only the
//     estimate of a dense span (up to 64 pages) and a tie group of more than 100 incidents
//     sharing both lastUpdateTime and createdTime skip further. Unconfirmed: if the service
//     answered a deep $skip with an empty page, such a probe would pass; set maxSkip then.
//   - @odata.nextLink: not documented, never followed; a reply that names one is not taken as
//     the whole of its query (the decoder's "more"), as for Graph.
//   - incidentId is a number and not filterable, so a window is never paged along the id
//     (idKey false); its decimal digits are the record's key.

// incidents is GET /api/incidents of the Defender XDR API.
var incidents = &dialect{
	name:     FeedIncidents,
	label:    "Defender XDR API",
	noun:     "incident",
	path:     "/api/incidents",
	updated:  "lastUpdateTime",
	created:  "createdTime",
	id:       "incidentId",
	idNumber: true,
	maxTop:   100,
	// 50 calls a minute and 1,500 an hour (the list page and the incidents API overview).
	limits:  Limits{PerMinute: 50, Minute: time.Minute, PerHour: 1500, Hour: time.Hour},
	clouds:  xdrClouds,
	regions: []string{"eu", "uk", "us"},
	regionHost: func(r string) string {
		return "https://api-" + r + ".security.microsoft.com"
	},
	timeLit: FilterTime, // unquoted, 7 fractional digits: Microsoft's example (ToString("o"))

	errorBody:     xdrErrorBody,
	hintThrottled: "the Defender XDR incidents API's rate limit: 50 calls per minute and 1,500 per hour per application",
	hintForbidden: "the app lacks the Incident.Read.All application permission or admin consent: " +
		"in Entra ID → App registrations → your app → API permissions, add Microsoft Threat Protection → " +
		"Application permissions → Incident.Read.All, then Grant admin consent",
}

// xdrClouds: the token's resource is the API host of each cloud (commercial: documented;
// the US Government scopes are assumed by analogy, unconfirmed).
var xdrClouds = map[Cloud]cloudHosts{
	Commercial: {api: "https://api.security.microsoft.com", resource: "https://api.security.microsoft.com", login: "https://login.microsoftonline.com"},
	GCC:        {api: "https://api-gcc.security.microsoft.us", resource: "https://api-gcc.security.microsoft.us", login: "https://login.microsoftonline.com"},
	GCCHigh:    {api: "https://api-gov.security.microsoft.us", resource: "https://api-gov.security.microsoft.us", login: "https://login.microsoftonline.us"},
	DoD:        {api: "https://api-gov.security.microsoft.us", resource: "https://api-gov.security.microsoft.us", login: "https://login.microsoftonline.us"},
}

// xdrErrorBody reads {"error": {"code", "message", "target"}}, target being the request's
// tracking id (https://learn.microsoft.com/defender-xdr/api-error-codes). A member of the
// wrong type is left out, not the whole body.
func xdrErrorBody(_ http.Header, body []byte) errorBody {
	var doc struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Target  string `json:"target"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil && !errors.As(err, new(*json.UnmarshalTypeError)) {
		return errorBody{}
	}
	return errorBody{code: oneLine(doc.Error.Code, 64), message: oneLine(doc.Error.Message, 300), target: oneLine(doc.Error.Target, 64)}
}

// IncidentAlert is one alert nested in an incident.
type IncidentAlert struct {
	ID          string    // alertId
	LastUpdated time.Time // lastUpdatedTime (with a "d", unlike the incident's lastUpdateTime)
	// Raw is the alert object's exact bytes, a slice of the incident's: valid as long as they are.
	Raw []byte
}

// IncidentAlerts returns the alerts nested in an incident's JSON (its "alerts" array), in
// order, each with its alertId, lastUpdatedTime and exact bytes. An incident without alerts
// (a merged one: "alerts" empty, null or absent) has none. Member names are matched as
// encoding/json reads them (escapes decoded); the incident's first "incidentId" and "alerts"
// count, as the page decoder's first "id" does, and a nested alert naming "alertId" or
// "lastUpdatedTime" twice is refused. An error names the incident and the alert's place.
func IncidentAlerts(raw []byte) ([]IncidentAlert, error) {
	var out []IncidentAlert
	var incident string // the incident's id, for messages
	bad := func(i int, msg string) error {
		s := "incident"
		if incident != "" {
			s += " " + incident
		}
		if i >= 0 {
			s += fmt.Sprintf(", alert #%d", i)
		}
		return fmt.Errorf("%s: %s", s, msg)
	}
	var alertsRaw []byte
	sawID, sawAlerts := false, false
	msg := members(raw, func(key, val []byte) {
		switch string(key) {
		case "incidentId":
			if !sawID {
				sawID = true
				if id, m := numberID(val, "incident", "incidentId"); m == "" {
					incident = id
				}
			}
		case "alerts":
			if !sawAlerts {
				sawAlerts, alertsRaw = true, val
			}
		}
	})
	if msg != "" {
		return nil, bad(-1, msg)
	}
	if alertsRaw == nil || alertsRaw[0] == 'n' {
		return nil, nil
	}
	if alertsRaw[0] != '[' {
		return nil, bad(-1, `"alerts" is not an array`)
	}
	i := skipWS(alertsRaw, 1)
	if alertsRaw[i] == ']' {
		return nil, nil
	}
	for n := 0; ; n++ {
		end, m := validValue(alertsRaw, i, 1)
		if m != "" {
			return nil, bad(n, m)
		}
		a, m := nestedAlert(alertsRaw[i:end])
		if m != "" {
			return nil, bad(n, m)
		}
		out = append(out, a)
		i = skipWS(alertsRaw, end)
		if alertsRaw[i] == ']' {
			return out, nil
		}
		i = skipWS(alertsRaw, i+1) // a ',': validValue checked the array as a whole
	}
}

// nestedAlert reads one nested alert's alertId and lastUpdatedTime.
func nestedAlert(raw []byte) (IncidentAlert, string) {
	a := IncidentAlert{Raw: raw}
	if raw[0] != '{' {
		return a, "an alert must be a JSON object"
	}
	var idRaw, lutRaw []byte
	var idEsc, lutEsc, twice bool
	msg := members(raw, func(key, val []byte) {
		if len(val) == 0 {
			return
		}
		esc := val[0] == '"' && containsByte(val, '\\')
		switch string(key) {
		case "alertId":
			twice = twice || idRaw != nil
			idRaw, idEsc = val, esc
		case "lastUpdatedTime":
			twice = twice || lutRaw != nil
			lutRaw, lutEsc = val, esc
		}
	})
	if msg != "" {
		return a, msg
	}
	if twice {
		// Readers disagree on which one counts (the first, the last, both): the alert's key
		// would be a guess.
		return a, `the alert names "alertId" or "lastUpdatedTime" twice`
	}
	if idRaw == nil || idRaw[0] != '"' {
		return a, `the alert has no "alertId" string`
	}
	id, ok := unquote(idRaw, idEsc)
	if !ok || id == "" {
		return a, `the alert's "alertId" is empty or unreadable`
	}
	a.ID = id
	if lutRaw == nil || lutRaw[0] != '"' {
		return a, fmt.Sprintf(`alert %q has no "lastUpdatedTime" string`, id)
	}
	t, ok := timeValue(lutRaw, lutEsc)
	if !ok {
		return a, fmt.Sprintf(`alert %q: "lastUpdatedTime" %.60s is not a UTC ISO-8601 time`, id, lutRaw)
	}
	a.LastUpdated = t
	return a, ""
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// members checks that raw is exactly one JSON object and calls fn with each top-level member's
// name (as memberName reads it) and value.
func members(raw []byte, fn func(key, val []byte)) string {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return "not a JSON object"
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			if i >= len(raw) || raw[i] != '"' {
				return "want a member name"
			}
			kEnd, kEsc, m := validString(raw, i)
			if m != "" {
				return m
			}
			key := memberName(raw[i:kEnd], kEsc)
			i = skipWS(raw, kEnd)
			if i >= len(raw) || raw[i] != ':' {
				return "want : after a member name"
			}
			i = skipWS(raw, i+1)
			vEnd, m := validValue(raw, i, 1)
			if m != "" {
				return m
			}
			fn(key, raw[i:vEnd])
			i = skipWS(raw, vEnd)
			if i >= len(raw) {
				return "object not closed"
			}
			if raw[i] == '}' {
				i++
				break
			}
			if raw[i] != ',' {
				return "want , or } in an object"
			}
			i = skipWS(raw, i+1)
		}
	}
	if skipWS(raw, i) != len(raw) {
		return "data after the object"
	}
	return ""
}
