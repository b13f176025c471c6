package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testOnly says why a package made for tests must not be in the shipped binary, or "".
func testOnly(path string) string {
	switch {
	case path == "testing" || strings.HasPrefix(path, "testing/"):
		return "the testing package"
	case strings.HasSuffix(path, "/httptest") || strings.HasSuffix(path, "/testcert") || path == "internal/testenv":
		return "a standard library package made for tests"
	case strings.HasPrefix(path, "ta-defender-alerts/") && strings.HasSuffix(path, "/dtest"):
		return "a test helper package of ours"
	}
	return ""
}

// The binary links no package made for tests, on every platform it is built for: the demo
// runs the stand-ins, which serve on plain net/http (app/loopback); helpers that need the
// testing package live apart (app/defendertest/dtest). go list sees the same build as go build.
func TestBinaryLinksNoTestPackage(t *testing.T) {
	goBin, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		t.Fatalf("no go command to list the binary's packages: %v", err)
	}
	for _, goos := range []string{"linux", "windows", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", ".")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64")
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("go list: %v\n%s", err, stderr)
			}
			importers := map[string][]string{}
			var deps []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(line)
				deps = append(deps, f[0])
				for _, imp := range f[1:] {
					importers[imp] = append(importers[imp], f[0])
				}
			}
			if len(deps) < 50 || deps[len(deps)-1] != "ta-defender-alerts/app/cmd/defender_alerts" {
				t.Fatalf("go list gave %d packages ending in %q: not the binary's dependencies", len(deps), deps[len(deps)-1])
			}
			for _, p := range deps {
				if why := testOnly(p); why != "" {
					t.Errorf("the binary links %s (%s), imported by %s", p, why, strings.Join(importers[p], ", "))
				}
			}
		})
	}
}
