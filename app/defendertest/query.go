package defendertest

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The documented $filter properties of GET /api/alerts.
var filterProps = map[string]string{
	"alertCreationTime": "date", "lastUpdateTime": "date", "lastEventTime": "date",
	"incidentId": "number", "investigationId": "number",
	"id": "string", "assignedTo": "string", "detectionSource": "string",
	"status": "string", "severity": "string", "category": "string",
}

// modelled are the properties the stand-in can evaluate.
var modelled = map[string]bool{"lastUpdateTime": true, "alertCreationTime": true, "id": true, "status": true}

var ops = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true}

// Unquoted ISO-8601 UTC with at most 7 fractional digits, as the API documents.
var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?Z$`)

type clause struct {
	prop, op string
	t        time.Time
	s        string
}

type query struct {
	top, skip int
	clauses   []clause
	// GraphMode: a $filter that is not a lastUpdateDateTime range (nil: none), whether
	// $count=true, and the options a nextLink repeats.
	pred  func(*alert, Version) bool
	count bool
	link  string
}

func parseQuery(raw string) (query, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return query{}, fmt.Errorf("Invalid query string: %v", err)
	}
	q := query{top: 10000}
	for k, v := range vals {
		if len(v) != 1 {
			return q, fmt.Errorf("Query option '%s' was specified more than once", k)
		}
		switch k {
		case "$top":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				return q, fmt.Errorf("Invalid value '%s' for $top query option", v[0])
			}
			if n > 10000 {
				return q, fmt.Errorf("The limit of '10000' for Top query has been exceeded. The value from the incoming request is '%d'.", n)
			}
			q.top = n
		case "$skip":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				return q, fmt.Errorf("Invalid value '%s' for $skip query option", v[0])
			}
			q.skip = n
		case "$expand":
			if v[0] != "evidence" {
				return q, fmt.Errorf("Could not find a property named '%s' on type 'Alert' to expand", v[0])
			}
		case "$filter":
			if q.clauses, err = parseFilter(v[0]); err != nil {
				return q, err
			}
		case "$orderby":
			return q, errors.New("Query option 'OrderBy' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.")
		default:
			return q, fmt.Errorf("Query option '%s' is not supported", k)
		}
	}
	return q, nil
}

func parseFilter(f string) ([]clause, error) {
	var out []clause
	for _, part := range strings.Split(f, " and ") {
		fields := strings.SplitN(strings.TrimSpace(part), " ", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("Syntax error in $filter at '%s'", part)
		}
		c := clause{prop: fields[0], op: fields[1]}
		kind, ok := filterProps[c.prop]
		if !ok {
			return nil, fmt.Errorf("Could not find a property named '%s' on type 'microsoft.windowsDefenderATP.api.PublicAlert'", c.prop)
		}
		if !ops[c.op] {
			return nil, fmt.Errorf("Syntax error: unknown operator '%s' in $filter", c.op)
		}
		lit := fields[2]
		switch kind {
		case "date":
			if strings.HasPrefix(lit, "'") || strings.HasPrefix(lit, `"`) {
				return nil, fmt.Errorf("A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind '%s'", c.op)
			}
			if !dateRE.MatchString(lit) {
				return nil, fmt.Errorf("Syntax error in $filter: '%s' is not a valid DateTimeOffset", lit)
			}
			t, err := time.Parse(time.RFC3339Nano, lit)
			if err != nil {
				return nil, fmt.Errorf("Syntax error in $filter: '%s' is not a valid DateTimeOffset", lit)
			}
			c.t = t.UTC()
		case "string":
			if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
				return nil, fmt.Errorf("Syntax error in $filter: string literal expected for '%s'", c.prop)
			}
			c.s = lit[1 : len(lit)-1]
		case "number":
			if _, err := strconv.ParseInt(lit, 10, 64); err != nil {
				return nil, fmt.Errorf("Syntax error in $filter: number expected for '%s'", c.prop)
			}
		}
		if !modelled[c.prop] {
			return nil, fmt.Errorf("stand-in: $filter on '%s' is valid for the API but not modelled here", c.prop)
		}
		out = append(out, c)
	}
	return out, nil
}

func (q query) match(a *alert, v Version) bool {
	if q.pred != nil && !q.pred(a, v) {
		return false
	}
	for _, c := range q.clauses {
		var cmp int
		switch c.prop {
		case "lastUpdateTime":
			cmp = v.LastUpdate.Compare(c.t)
		case "alertCreationTime", "createdTime":
			cmp = a.created.Compare(c.t)
		case "assignedTo":
			cmp = strings.Compare(viewIncident(a, v).assignedTo, c.s)
		case "id":
			cmp = strings.Compare(a.id, c.s)
		case "status":
			cmp = strings.Compare(v.Status, c.s)
		}
		ok := false
		switch c.op {
		case "eq":
			ok = cmp == 0
		case "ne":
			ok = cmp != 0
		case "gt":
			ok = cmp > 0
		case "ge":
			ok = cmp >= 0
		case "lt":
			ok = cmp < 0
		case "le":
			ok = cmp <= 0
		}
		if !ok {
			return false
		}
	}
	return true
}

func onlyLastUpdate(q query) bool {
	if q.pred != nil {
		return false
	}
	for _, c := range q.clauses {
		if c.prop != "lastUpdateTime" || c.op == "eq" || c.op == "ne" {
			return false
		}
	}
	return true
}

// lutRange turns the lastUpdateTime clauses into two tests on a newest-first index: above(t)
// is true while t is above the upper bound; inLow(t) while t is at or above the lower bound.
func (q query) lutRange() (inLow func(time.Time) bool, above func(time.Time) bool) {
	inLow = func(time.Time) bool { return true }
	above = func(time.Time) bool { return false }
	for _, c := range q.clauses {
		c := c
		prevLow, prevAbove := inLow, above
		switch c.op {
		case "ge":
			inLow = func(t time.Time) bool { return prevLow(t) && !t.Before(c.t) }
		case "gt":
			inLow = func(t time.Time) bool { return prevLow(t) && t.After(c.t) }
		case "le":
			above = func(t time.Time) bool { return prevAbove(t) || t.After(c.t) }
		case "lt":
			above = func(t time.Time) bool { return prevAbove(t) || !t.Before(c.t) }
		}
	}
	return inLow, above
}
