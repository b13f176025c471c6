package defendertest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// alerts_v2's $filter: comparisons (eq ne gt ge lt le) on the documented properties joined
// by and/or, in parentheses, and not (...). Dates are unquoted ISO 8601, enums quoted
// members of their enum, assignedTo a quoted string or null.

const graphType = "microsoft.graph.security.alert"

// The documented $filter properties of alerts_v2 and their kinds.
var graphFilterProps = map[string]string{
	"createdDateTime": "date", "lastUpdateDateTime": "date", "assignedTo": "string",
	"classification": "enum", "determination": "enum", "severity": "enum", "serviceSource": "enum", "status": "enum",
}

// Properties of the alert that exist but cannot be filtered on.
var graphOtherProps = map[string]bool{
	"id": true, "providerAlertId": true, "incidentId": true, "title": true, "description": true, "category": true,
	"detectionSource": true, "detectorId": true, "tenantId": true, "firstActivityDateTime": true,
	"lastActivityDateTime": true, "resolvedDateTime": true, "actorDisplayName": true, "threatDisplayName": true,
	"threatFamilyName": true, "mitreTechniques": true, "alertWebUrl": true, "incidentWebUrl": true,
}

// The members of the filterable enums, as the alert resource lists them.
var graphEnums = map[string][]string{
	"status":         {"unknown", "new", "inProgress", "resolved", "unknownFutureValue"},
	"severity":       {"unknown", "informational", "low", "medium", "high", "unknownFutureValue"},
	"classification": {"unknown", "falsePositive", "truePositive", "informationalExpectedActivity", "unknownFutureValue"},
	"determination": {"unknown", "apt", "malware", "securityPersonnel", "securityTesting", "unwantedSoftware", "other",
		"multiStagedAttack", "compromisedUser", "compromisedAccount", "phishing", "maliciousUserActivity", "clean",
		"notMalicious", "insufficientData", "notEnoughDataToValidate", "confirmedUserActivity", "confirmedActivity",
		"lineOfBusinessApplication", "unknownFutureValue"},
	"serviceSource": serviceSources,
}

var opKinds = map[string]string{"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual", "lt": "LessThan", "le": "LessThanOrEqual"}

// Unquoted ISO 8601 with at most 7 fractional digits, in UTC or with an offset.
var graphDateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$`)

// fnode is a node of a parsed $filter: and/or/not over kids, or a comparison.
type fnode struct {
	op   string
	kids []*fnode
	prop string
	t    time.Time
	s    string
	null bool
}

type graphFilter struct{ root *fnode }

type fparser struct {
	toks []string
	i    int
}

func parseGraphFilter(f string) (graphFilter, error) {
	toks, err := lexFilter(f)
	if err != nil {
		return graphFilter{}, err
	}
	p := &fparser{toks: toks}
	n, err := p.or()
	if err == nil && p.i < len(toks) {
		err = fmt.Errorf("Invalid filter clause: syntax error at '%s'.", toks[p.i])
	}
	return graphFilter{n}, err
}

// lexFilter splits a filter into words, parentheses and quoted strings (kept quoted, with
// ” for a quote inside).
func lexFilter(f string) ([]string, error) {
	var toks []string
	for i := 0; i < len(f); {
		switch c := f[i]; {
		case c == ' ':
			i++
		case c == '(' || c == ')':
			toks = append(toks, f[i:i+1])
			i++
		case c == '\'':
			j := i + 1
			for ; j < len(f); j++ {
				if f[j] == '\'' {
					if j+1 < len(f) && f[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(f) {
				return nil, errors.New("Invalid filter clause: unterminated string literal.")
			}
			toks = append(toks, f[i:j+1])
			i = j + 1
		default:
			j := i
			for j < len(f) && !strings.ContainsRune(" ()'", rune(f[j])) {
				j++
			}
			toks = append(toks, f[i:j])
			i = j
		}
	}
	if len(toks) == 0 {
		return nil, errors.New("Invalid filter clause: the filter is empty.")
	}
	return toks, nil
}

func (p *fparser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *fparser) next() (string, error) {
	if p.i >= len(p.toks) {
		return "", errors.New("Invalid filter clause: the expression ends too early.")
	}
	p.i++
	return p.toks[p.i-1], nil
}

func (p *fparser) or() (*fnode, error) { return p.chain("or", p.and) }

func (p *fparser) and() (*fnode, error) { return p.chain("and", p.unary) }

func (p *fparser) chain(op string, sub func() (*fnode, error)) (*fnode, error) {
	n, err := sub()
	if err != nil {
		return nil, err
	}
	for p.peek() == op {
		p.i++
		m, err := sub()
		if err != nil {
			return nil, err
		}
		if n.op == op {
			n.kids = append(n.kids, m)
		} else {
			n = &fnode{op: op, kids: []*fnode{n, m}}
		}
	}
	return n, nil
}

func (p *fparser) unary() (*fnode, error) {
	switch p.peek() {
	case "not":
		p.i++
		if p.peek() != "(" {
			return nil, errors.New("Invalid filter clause: 'not' must be followed by a parenthesized expression.")
		}
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &fnode{op: "not", kids: []*fnode{n}}, nil
	case "(":
		p.i++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if t, _ := p.next(); t != ")" {
			return nil, errors.New("Invalid filter clause: ')' expected.")
		}
		return n, nil
	}
	return p.compare()
}

// compare reads prop op literal, checking the property, the operator and the literal's type.
func (p *fparser) compare() (*fnode, error) {
	prop, err := p.next()
	if err != nil {
		return nil, err
	}
	kind, ok := graphFilterProps[prop]
	if !ok {
		if graphOtherProps[prop] {
			return nil, fmt.Errorf("Invalid filter clause: the property '%s' is not supported in $filter on '%s'.", prop, graphType)
		}
		return nil, fmt.Errorf("Could not find a property named '%s' on type '%s'.", prop, graphType)
	}
	op, err := p.next()
	if err != nil {
		return nil, err
	}
	if opKinds[op] == "" {
		return nil, fmt.Errorf("Invalid filter clause: operator '%s' is not supported on '%s'.", op, prop)
	}
	lit, err := p.next()
	if err != nil {
		return nil, err
	}
	n := &fnode{op: op, prop: prop}
	quoted := strings.HasPrefix(lit, "'")
	switch kind {
	case "date":
		if quoted {
			return nil, fmt.Errorf("A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind '%s'.", opKinds[op])
		}
		t, err := time.Parse(time.RFC3339Nano, lit)
		if !graphDateRE.MatchString(lit) || err != nil {
			return nil, fmt.Errorf("Invalid filter clause: '%s' is not a valid Edm.DateTimeOffset.", lit)
		}
		n.t = t.UTC()
		return n, nil
	case "string":
		if op != "eq" && op != "ne" {
			return nil, fmt.Errorf("Invalid filter clause: operator '%s' is not supported on '%s'.", op, prop)
		}
		if lit == "null" {
			n.null = true
			return n, nil
		}
	}
	if op != "eq" && op != "ne" {
		return nil, fmt.Errorf("Invalid filter clause: operator '%s' is not supported on '%s'.", op, prop)
	}
	if !quoted {
		return nil, fmt.Errorf("Could not find a property named '%s' on type '%s'.", lit, graphType)
	}
	n.s = strings.ReplaceAll(lit[1:len(lit)-1], "''", "'")
	if kind == "enum" && !isMember(graphEnums[prop], n.s) {
		return nil, fmt.Errorf("The string '%s' is not a valid enumeration type constant.", n.s)
	}
	return n, nil
}

func isMember(members []string, s string) bool {
	for _, m := range members {
		if m == s {
			return true
		}
	}
	return false
}

// lastUpdateRange returns the filter as lastUpdateTime clauses when it is nothing but
// lastUpdateDateTime ranges joined by and (the stand-in's index answers those fast), or nil.
func (f graphFilter) lastUpdateRange() []clause {
	kids := []*fnode{f.root}
	if f.root.op == "and" {
		kids = f.root.kids
	}
	var out []clause
	for _, k := range kids {
		if k.prop != "lastUpdateDateTime" || k.op == "eq" || k.op == "ne" {
			return nil
		}
		out = append(out, clause{prop: "lastUpdateTime", op: k.op, t: k.t})
	}
	return out
}

// predicate returns the filter as a test of an alert version, or nil when lastUpdateRange
// stands for it.
func (f graphFilter) predicate() func(*alert, Version) bool {
	if f.lastUpdateRange() != nil {
		return nil
	}
	return func(a *alert, v Version) bool { return f.root.eval(graphView(a, v)) }
}

// has reports whether the filter uses op anywhere.
func (n *fnode) has(op string) bool {
	if n.op == op {
		return true
	}
	for _, k := range n.kids {
		if k.has(op) {
			return true
		}
	}
	return false
}

func (n *fnode) eval(g gview) bool {
	switch n.op {
	case "and":
		for _, k := range n.kids {
			if !k.eval(g) {
				return false
			}
		}
		return true
	case "or":
		for _, k := range n.kids {
			if k.eval(g) {
				return true
			}
		}
		return false
	case "not":
		return !n.kids[0].eval(g)
	}
	var cmp int
	switch n.prop {
	case "createdDateTime":
		cmp = g.created.Compare(n.t)
	case "lastUpdateDateTime":
		cmp = g.lastUpdate.Compare(n.t)
	case "assignedTo":
		if n.null != (g.assignedTo == "") || (!n.null && g.assignedTo != n.s) {
			cmp = 1
		}
	default:
		cmp = strings.Compare(g.enum(n.prop), n.s)
	}
	switch n.op {
	case "eq":
		return cmp == 0
	case "ne":
		return cmp != 0
	case "gt":
		return cmp > 0
	case "ge":
		return cmp >= 0
	case "lt":
		return cmp < 0
	}
	return cmp <= 0
}
