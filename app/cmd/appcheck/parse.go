package main

// Readers of the package's own formats: .conf and .meta files, the binary declaration, and
// version numbers.

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// parseConf reads a .conf file into stanza → key → value.
func parseConf(s string) map[string]map[string]string {
	out := map[string]map[string]string{"default": {}}
	cur := out["default"]
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			name := line[1 : len(line)-1]
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			cur = out[name]
		default:
			if k, v, ok := strings.Cut(line, "="); ok {
				cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// accessRoles gives the roles of one permission ("read" or "write") in a .meta access line
// ("read : [ admin, sc_admin ], write : [ admin ]"), sorted.
func accessRoles(access, perm string) []string {
	m := regexp.MustCompile(`\b` + perm + `\s*:\s*\[([^\]]*)\]`).FindStringSubmatch(access)
	if m == nil {
		return nil
	}
	var roles []string
	for _, r := range strings.Split(m[1], ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	slices.Sort(roles)
	return roles
}

// parseBinDecl reads README/binaries.md: a "## <path>" heading per binary, then
// "- <key>: <value>" lines (sha256, go, commit, build; the build command in backquotes).
func parseBinDecl(s string) map[string]map[string]string {
	out := map[string]map[string]string{}
	var cur map[string]string
	for _, line := range strings.Split(s, "\n") {
		if name, ok := strings.CutPrefix(line, "## "); ok {
			cur = map[string]string{}
			out[strings.TrimSpace(name)] = cur
			continue
		}
		if kv, ok := strings.CutPrefix(line, "- "); ok && cur != nil {
			if k, v, ok := strings.Cut(kv, ": "); ok {
				cur[k] = strings.Trim(strings.TrimSpace(v), "`")
			}
		}
	}
	return out
}

// atLeast compares dotted version numbers: atLeast("5.1", "5.0") is true, ("4.20", "5.0") false.
func atLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := 0; i < max(len(h), len(w)); i++ {
		var a, b int
		var err error
		if i < len(h) {
			if a, err = strconv.Atoi(h[i]); err != nil {
				return false
			}
		}
		if i < len(w) {
			b, _ = strconv.Atoi(w[i])
		}
		if a != b {
			return a > b
		}
	}
	return true
}
