package defendertest

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// IncidentsMode's query options and $filter grammar, and the 400s the XDR API answers.

// The documented $filter properties of GET /api/incidents, and the incident's other
// properties (which exist but cannot be filtered on).
var (
	incidentFilterProps = map[string]string{"lastUpdateTime": "date", "createdTime": "date", "status": "enum", "assignedTo": "string"}
	incidentOtherProps  = map[string]bool{"incidentId": true, "redirectIncidentId": true, "incidentName": true, "severity": true,
		"classification": true, "determination": true, "detectionSource": true, "tags": true, "comments": true, "alerts": true}
	incidentStatusEnum = []string{"Active", "InProgress", "Resolved", "Redirected"}
	// Unquoted ISO 8601 UTC with at most 7 fractional digits (Microsoft's example: ToString("o")).
	incidentDateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?Z$`)
)

// parseIncidents reads /api/incidents' query options: $filter, $top (at most 100), $skip.
func parseIncidents(raw string) (query, *refusal) {
	bad := func(format string, a ...any) (query, *refusal) {
		return query{}, &refusal{400, "BadRequest", fmt.Sprintf(format, a...)}
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return bad("Invalid query string: %v", err)
	}
	q := query{top: IncidentsMaxTop}
	for k, v := range vals {
		if len(v) != 1 {
			return bad("Query option '%s' was specified more than once, but it must be specified at most once.", k)
		}
		switch k {
		case "$top":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				return bad("Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", v[0])
			}
			if n > IncidentsMaxTop {
				return bad("The limit of '%d' for Top query has been exceeded. The value from the incoming request is '%d'.", IncidentsMaxTop, n)
			}
			q.top = n
		case "$skip":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				return bad("Invalid value '%s' for $skip query option found. The $skip query option requires a non-negative integer value.", v[0])
			}
			q.skip = n
		case "$filter":
			if q.clauses, err = parseIncidentFilter(v[0]); err != nil {
				return bad("%v", err)
			}
		default:
			if strings.HasPrefix(k, "$") {
				return bad("Query option '%s' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.", strings.TrimPrefix(k, "$"))
			}
			return bad("Unrecognized query argument specified: '%s'.", k)
		}
	}
	return q, nil
}

// parseIncidentFilter reads comparisons joined by "and": dates unquoted, status a quoted
// member of its enum, assignedTo a quoted string. ("or" and parentheses are OData the API may
// take, but nothing here needs them: refused as not modelled.)
func parseIncidentFilter(f string) ([]clause, error) {
	var out []clause
	for _, part := range strings.Split(f, " and ") {
		fields := strings.SplitN(strings.TrimSpace(part), " ", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("Syntax error in $filter at '%s'", part)
		}
		c := clause{prop: fields[0], op: fields[1]}
		kind, ok := incidentFilterProps[c.prop]
		switch {
		case !ok && incidentOtherProps[c.prop]:
			return nil, fmt.Errorf("The property '%s' cannot be used in the $filter query option.", c.prop)
		case !ok:
			return nil, fmt.Errorf("Could not find a property named '%s' on type 'Microsoft.Threatintelligence.Incidents.PublicApi.Incident'.", c.prop)
		case !ops[c.op]:
			return nil, fmt.Errorf("Syntax error: unknown operator '%s' in $filter", c.op)
		}
		lit := fields[2]
		if strings.Contains(lit, " or ") || strings.ContainsAny(c.prop+lit, "()") {
			return nil, fmt.Errorf("stand-in: 'or' and parentheses in $filter are not modelled here")
		}
		quoted := len(lit) >= 2 && lit[0] == '\'' && lit[len(lit)-1] == '\''
		switch kind {
		case "date":
			if strings.HasPrefix(lit, "'") || strings.HasPrefix(lit, `"`) {
				return nil, fmt.Errorf("A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind '%s'.", opKinds[c.op])
			}
			t, err := time.Parse(time.RFC3339Nano, lit)
			if !incidentDateRE.MatchString(lit) || err != nil {
				return nil, fmt.Errorf("Syntax error in $filter: '%s' is not a valid Edm.DateTimeOffset.", lit)
			}
			c.t = t.UTC()
		default:
			if c.op != "eq" && c.op != "ne" {
				return nil, fmt.Errorf("Syntax error: operator '%s' is not supported on '%s'.", c.op, c.prop)
			}
			if !quoted {
				return nil, fmt.Errorf("Syntax error in $filter: string literal expected for '%s'", c.prop)
			}
			c.s = strings.ReplaceAll(lit[1:len(lit)-1], "''", "'")
			if kind == "enum" && !isMember(incidentStatusEnum, c.s) {
				return nil, fmt.Errorf("The string '%s' is not a valid enumeration type constant.", c.s)
			}
		}
		out = append(out, c)
	}
	return out, nil
}
