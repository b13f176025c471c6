package version

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// minGo reads build.sh's minimum Go version.
func minGo(t *testing.T) (string, [3]int) {
	t.Helper()
	b, err := os.ReadFile("../../build.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^GO_MIN=([0-9]+)\.([0-9]+)\.([0-9]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("build.sh has no GO_MIN=<major>.<minor>.<patch> line")
	}
	var v [3]int
	for i := range v {
		v[i], _ = strconv.Atoi(string(m[i+1]))
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]), v
}

// buildSh runs a copy of build.sh (so that nothing lands in the repository) with a fake go
// first on PATH that reports goVersion and logs every other call. It returns the exit code,
// stderr, and the logged go commands.
func buildSh(t *testing.T, goVersion string, args ...string) (int, string, []string) {
	return buildShEnv(t, goVersion, nil, args...)
}

func buildShEnv(t *testing.T, goVersion string, env []string, args ...string) (int, string, []string) {
	t.Helper()
	return buildShIn(t, t.TempDir(), goVersion, env, args...)
}

// buildShIn is buildShEnv in a given folder (where the copy of build.sh goes).
func buildShIn(t *testing.T, dir, goVersion string, env []string, args ...string) (int, string, []string) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash here")
	}
	script, err := os.ReadFile("../../build.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "build.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "fakebin")
	if err := os.MkdirAll(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "go.log")
	_ = os.Remove(log) // a folder may serve several runs: each logs its own calls
	goScript := "#!/bin/sh\n"
	if goVersion != "" { // "" means: no go at all
		// With FAKE_FETCHABLE set, GOTOOLCHAIN=<that> makes it report that version, as go
		// does once it has fetched the toolchain.
		goScript += `if [ "$1" = env ] && [ "$2" = GOVERSION ]; then` + "\n" +
			`  if [ -n "$FAKE_FETCHABLE" ] && [ "$GOTOOLCHAIN" = "$FAKE_FETCHABLE" ]; then echo "$FAKE_FETCHABLE"; else echo "$FAKE_GOVERSION"; fi; exit 0` + "\nfi\n" +
			`echo "$*" >> "$FAKE_GO_LOG"` + "\n" + `echo "GOTOOLCHAIN=$GOTOOLCHAIN" >> "$FAKE_GO_LOG"` + "\nexit 0\n"
		if err := os.WriteFile(filepath.Join(fake, "go"), []byte(goScript), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bash, append([]string{filepath.Join(dir, "build.sh")}, args...)...)
	cmd.Env = append([]string{"PATH=" + fake + ":/usr/bin:/bin", "HOME=" + dir, "FAKE_GOVERSION=" + goVersion, "FAKE_GO_LOG=" + log, "GOTOOLCHAIN=local"}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(log)
	return code, stderr.String(), strings.Fields(strings.ReplaceAll(string(calls), " ", "_"))
}

// build.sh builds and tests only with a Go at least as new as the current patched release,
// compared as numbers, whatever GOTOOLCHAIN says; every command that compiles is held back.
func TestBuildShRefusesOldGo(t *testing.T) {
	minStr, m := minGo(t)
	older := []string{
		fmt.Sprintf("go%d.%d.%d", m[0], m[1]-1, 99),        // an older minor, however patched
		fmt.Sprintf("go%d.%d", m[0], m[1]),                 // the minor's first release, old style
		fmt.Sprintf("go%d.%drc2", m[0], m[1]),              // a release candidate of it
		fmt.Sprintf("devel go%d.%d-abcdef0", m[0], m[1]+1), // cannot tell what it has
	}
	if m[2] > 0 {
		older = append(older, fmt.Sprintf("go%d.%d.%d", m[0], m[1], m[2]-1)) // one patch short
	}
	commands := []string{"build", "test", "demo", "package", "bench", "gobench", "faults", "fuzz"}
	for _, v := range older {
		for _, c := range commands {
			code, stderr, calls := buildSh(t, v, c)
			if code == 0 || len(calls) != 0 {
				t.Errorf("%s with %s: exit %d, go ran %v; want a refusal before any go command", c, v, code, calls)
			}
			if !strings.Contains(stderr, minStr) || !strings.Contains(stderr, strings.Fields(v)[0]) {
				t.Errorf("%s with %s: the message does not name the minimum %s and the Go found:\n%s", c, v, minStr, stderr)
			}
		}
	}
	if code, stderr, _ := buildSh(t, "", "build"); code == 0 || !strings.Contains(stderr, minStr) {
		t.Errorf("without go: exit %d, %q", code, stderr)
	}
	if code, _, calls := buildSh(t, "", "help"); code != 0 || len(calls) != 0 {
		t.Errorf("help needs no go: exit %d", code)
	}
}

func TestBuildShAcceptsCurrentGo(t *testing.T) {
	_, m := minGo(t)
	for _, v := range []string{
		fmt.Sprintf("go%d.%d.%d", m[0], m[1], m[2]),
		fmt.Sprintf("go%d.%d.%d X:nodwarf5", m[0], m[1], m[2]), // with an experiment
		fmt.Sprintf("go%d.%d.%d", m[0], m[1], m[2]+1),
		fmt.Sprintf("go%d.%d.%d", m[0], m[1], m[2]+10), // numbers, not strings: .18 > .8
		fmt.Sprintf("go%d.%d.0", m[0], m[1]+1),
		fmt.Sprintf("go%d.%drc1", m[0], m[1]+1),
		fmt.Sprintf("go%d.%d.0", m[0], m[1]+100),
		fmt.Sprintf("go%d.0.0", m[0]+1),
	} {
		code, stderr, calls := buildSh(t, v, "build")
		if code != 0 || len(calls) != 2 || !strings.HasPrefix(calls[0], "build_") || calls[1] != "GOTOOLCHAIN=local" {
			t.Errorf("build with %s: exit %d, go ran %v\n%s", v, code, calls, stderr)
		}
	}
}

// go.mod names the same minimum as its toolchain, so that go with GOTOOLCHAIN=auto switches
// to it by itself; its go line stays the language version, so that tools (go vet, gopls) still
// run with an older 1.26 where GOTOOLCHAIN=local (build.sh is what refuses or fetches there).
func TestGoModMatchesBuildSh(t *testing.T) {
	minStr, _ := minGo(t)
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^toolchain (\S+)$`).FindSubmatch(b)
	if m == nil || string(m[1]) != "go"+minStr {
		t.Errorf("go.mod's toolchain line is %q, build.sh's GO_MIN is %s: keep them equal", m, minStr)
	}
	if g := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b); g == nil || !strings.HasPrefix(string(g[1]), "1.26") {
		t.Errorf("go.mod's go line is %q: keep it at the language version (1.26.x)", g)
	}
}

// build.sh stamps the commit, and whether the tree had changes, into the binary with -X,
// whatever -buildvcs says; outside a git checkout the commit is "unknown".
func TestBuildShStampsTheCommit(t *testing.T) {
	minStr, _ := minGo(t)
	goVer := "go" + minStr
	ldflags := func(calls []string) string {
		t.Helper()
		if len(calls) == 0 || !strings.HasPrefix(calls[0], "build_") {
			t.Fatalf("go ran %v, want a build", calls)
		}
		return calls[0]
	}
	const pkg = "ta-defender-alerts/app/version."

	// Outside git.
	_, stderr, calls := buildShIn(t, t.TempDir(), goVer, []string{"GOFLAGS=-buildvcs=false"}, "build")
	if got := ldflags(calls); !strings.Contains(got, "-X_"+pkg+"Commit=unknown_") || !strings.Contains(got, "-X_"+pkg+"Modified=_") {
		t.Errorf("outside git: %s\n%s", got, stderr)
	}

	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git here")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("fakebin/\ngo.log\nbin/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The first run puts build.sh in place; commit it, so the tree is clean.
	buildShIn(t, dir, goVer, nil, "help")
	git("add", "-A")
	git("commit", "-q", "-m", "one")
	head := git("rev-parse", "HEAD")
	_, stderr, calls = buildShIn(t, dir, goVer, []string{"GOFLAGS=-buildvcs=false"}, "build")
	if got := ldflags(calls); !strings.Contains(got, "-X_"+pkg+"Commit="+head+"_") || !strings.Contains(got, "-X_"+pkg+"Modified=false_") {
		t.Errorf("clean checkout at %s: %s\n%s", head, got, stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "changed.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, calls = buildShIn(t, dir, goVer, nil, "build")
	if got := ldflags(calls); !strings.Contains(got, "-X_"+pkg+"Commit="+head+"_") || !strings.Contains(got, "-X_"+pkg+"Modified=true_") {
		t.Errorf("changed checkout at %s: %s\n%s", head, got, stderr)
	}
}
