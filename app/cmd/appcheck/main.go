// Command appcheck checks a built Splunk package against the AppInspect rules that can be
// checked here: layout, executables only under bin/, no local/ or local.meta, no secrets in
// .conf files, the binary declaration, one version everywhere, spec and scheme agreeing.
// Usage: appcheck dist/TA-defender-alerts-<version>.tgz
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

const appID = "TA-defender-alerts"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: appcheck <package.tgz>")
		os.Exit(2)
	}
	problems, err := check(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "appcheck:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Println("✗", p)
	}
	if len(problems) > 0 {
		fmt.Printf("appcheck: %d problem(s) in %s\n", len(problems), os.Args[1])
		os.Exit(1)
	}
	fmt.Printf("✓ appcheck: %s passes the package rules\n", os.Args[1])
}

type file struct {
	mode int64
	data []byte
	dir  bool
}

func check(pkg string) ([]string, error) {
	f, err := os.Open(pkg)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("not a gzip tarball: %w", err)
	}
	files := map[string]file{}
	tr := tar.NewReader(zr)
	var order []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(tr)
		name := strings.TrimSuffix(h.Name, "/")
		files[name] = file{mode: h.Mode, data: b, dir: h.Typeflag == tar.TypeDir}
		order = append(order, name)
	}
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }

	for _, name := range order {
		parts := strings.Split(name, "/")
		if parts[0] != appID {
			bad("%s is outside the single top folder %s", name, appID)
		}
		for _, part := range parts {
			if strings.HasPrefix(part, ".") {
				bad("hidden file or folder: %s", name)
			}
		}
		if len(parts) > 1 && parts[1] == "local" {
			bad("local/ must not ship: %s", name)
		}
		if path.Base(name) == "local.meta" {
			bad("local.meta must not ship: %s", name)
		}
		fl := files[name]
		if !fl.dir && fl.mode&0o111 != 0 && path.Base(path.Dir(name)) != "bin" {
			bad("executable outside a bin folder: %s", name)
		}
		if strings.HasSuffix(name, ".go") || path.Base(name) == "build.sh" || strings.Contains(name, "/.ci") || path.Base(name) == "go.mod" {
			bad("source or build file in the package: %s", name)
		}
	}
	bins := []string{"linux_x86_64/bin/defender_alerts", "darwin_x86_64/bin/defender_alerts", "windows_x86_64/bin/defender_alerts.exe"}
	for _, req := range append([]string{"app.manifest", "README.md", "README/inputs.conf.spec", "default/app.conf", "default/inputs.conf",
		"default/props.conf", "default/eventtypes.conf", "default/tags.conf", "metadata/default.meta"}, bins...) {
		fl, ok := files[appID+"/"+req]
		if !ok {
			bad("missing %s", req)
			continue
		}
		if strings.Contains(req, "/bin/") && fl.mode&0o111 == 0 {
			bad("%s is not executable", req)
		}
	}
	// Secrets in .conf files.
	secretRE := regexp.MustCompile(`(?i)^\s*([a-z0-9_.]*(password|secret|token|session_key)[a-z0-9_.]*)\s*=\s*(\S.*)$`)
	guidRE := regexp.MustCompile(`(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	for name, fl := range files {
		if !strings.HasSuffix(name, ".conf") {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(fl.data)))
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if m := secretRE.FindStringSubmatch(line); m != nil && m[3] != "********" {
				bad("%s:%d sets %s: secrets belong in storage/passwords", name, n, m[1])
			}
			if guidRE.MatchString(line) {
				bad("%s:%d holds a token-looking value", name, n)
			}
		}
	}
	// app.conf.
	appConf := parseConf(string(files[appID+"/default/app.conf"].data))
	if appConf["install"]["is_configured"] != "false" {
		bad("app.conf [install] is_configured must be false")
	}
	if !regexp.MustCompile(`^\d+$`).MatchString(appConf["install"]["build"]) {
		bad("app.conf [install] build must be an integer")
	}
	if appConf["package"]["id"] != appID {
		bad("app.conf [package] id must be %s", appID)
	}
	if l := len(appConf["ui"]["label"]); l < 5 || l > 80 {
		bad("app.conf [ui] label must be 5 to 80 characters")
	}
	for stanza, kv := range parseConf(string(files[appID+"/default/inputs.conf"].data)) {
		if strings.Contains(stanza, "://") && kv["disabled"] != "1" && kv["disabled"] != "true" {
			bad("default/inputs.conf enables input %s: ship none enabled", stanza)
		}
	}
	// One version everywhere.
	var manifest struct {
		SchemaVersion string `json:"schemaVersion"`
		Info          struct {
			ID struct{ Name, Version string } `json:"id"`
		} `json:"info"`
	}
	if err := json.Unmarshal(files[appID+"/app.manifest"].data, &manifest); err != nil {
		bad("app.manifest is not JSON: %v", err)
	}
	if manifest.SchemaVersion != "2.0.0" || manifest.Info.ID.Name != appID {
		bad("app.manifest: schemaVersion 2.0.0 and id.name %s expected", appID)
	}
	version := appConf["launcher"]["version"]
	if manifest.Info.ID.Version != version {
		bad("versions differ: app.conf %q, app.manifest %q", version, manifest.Info.ID.Version)
	}
	if !strings.Contains(pkg, "-"+version+".tgz") {
		bad("the package name does not carry version %s", version)
	}
	// The binary declaration.
	readme := string(files[appID+"/README.md"].data)
	if i := strings.Index(readme, "\n# Binary File Declaration"); i < 0 {
		bad("README.md has no '# Binary File Declaration' section")
	} else {
		decl := readme[i:]
		for _, b := range bins {
			if !strings.Contains(decl, b) {
				bad("the binary declaration does not name %s", b)
			}
		}
	}
	// Run this machine's binary: its version and its scheme against the spec.
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		dir, err := os.MkdirTemp("", "appcheck-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		exe := filepath.Join(dir, "defender_alerts")
		if err := os.WriteFile(exe, files[appID+"/"+bins[0]].data, 0o755); err != nil {
			return nil, err
		}
		out, err := exec.Command(exe, "version").Output()
		if err != nil || strings.TrimSpace(string(out)) != "defender_alerts "+version {
			bad("defender_alerts version says %q, app.conf %q", strings.TrimSpace(string(out)), version)
		}
		out, err = exec.Command(exe, "--scheme").Output()
		var scheme struct {
			Args []struct {
				Name string `xml:"name,attr"`
			} `xml:"endpoint>args>arg"`
		}
		if err != nil || xml.Unmarshal(out, &scheme) != nil {
			bad("defender_alerts --scheme failed: %v", err)
		}
		var schemeArgs []string
		for _, a := range scheme.Args {
			schemeArgs = append(schemeArgs, a.Name)
		}
		var specKeys []string
		for _, line := range strings.Split(string(files[appID+"/README/inputs.conf.spec"].data), "\n") {
			if k, _, ok := strings.Cut(line, " = "); ok && !strings.ContainsAny(line[:1], "#* ") {
				specKeys = append(specKeys, k)
			}
		}
		if strings.Join(schemeArgs, ",") != strings.Join(specKeys, ",") {
			bad("README/inputs.conf.spec keys %v differ from the scheme's %v", specKeys, schemeArgs)
		}
	}
	return p, nil
}

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
