// Command appcheck checks built Splunk packages against the AppInspect rules that can be
// checked here: layout, executables only under bin/, no local/ or local.meta, no secrets in
// .conf files, the binary declaration and its SHA-256s, one id and one version everywhere
// ([id], [package], [launcher], app.manifest, the binaries), the license and the CIM version
// the mapping needs, start_by_shell, TRUNCATE against the reader's limit, the [passwords]
// restriction, spec and scheme agreeing. A package whose name ends in -searchtime.tgz is the
// search-time one: the same app with no binaries and no input.
// Usage: appcheck dist/TA-defender-alerts-<version>.tgz [dist/TA-defender-alerts-<version>-searchtime.tgz]
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
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
	"slices"
	"strconv"
	"strings"

	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
)

const appID = "TA-defender-alerts"

// minCIMForMitre is the oldest CIM whose Alerts data model this app's mapping can rely on:
// props.conf fills mitre_technique_id, which the oldest Alerts model lacks. Splunk's CIM
// documentation lists the field for the Alerts model in its current releases; the release
// that added it could not be pinned down from the notes at hand, so the manifest asks for
// 5.0, a release that has it, rather than a 4.x that may not.
const minCIMForMitre = "5.0"

// bins are the packaged binaries, one per platform, in the folders splunkd searches first.
var bins = []string{"linux_x86_64/bin/defender_alerts", "darwin_x86_64/bin/defender_alerts", "windows_x86_64/bin/defender_alerts.exe"}

// binDecl is the file, inside the full package, that declares each binary's build facts.
const binDecl = "README/binaries.md"

// sourcetypes are the feeds' sourcetypes, each of which props.conf must describe.
var sourcetypes = func() []string {
	var st []string
	for _, f := range config.FeedNames() {
		st = append(st, config.FeedSourcetype(f))
		if n := config.FeedNestedSourcetype(f); n != "" {
			st = append(st, n)
		}
	}
	return append(st, config.DetectionSourcetype)
}()

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: appcheck <package.tgz> [<package-searchtime.tgz>]")
		os.Exit(2)
	}
	failed := false
	for _, pkg := range os.Args[1:] {
		problems, err := check(pkg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "appcheck:", err)
			os.Exit(1)
		}
		for _, p := range problems {
			fmt.Println("✗", p)
		}
		if len(problems) > 0 {
			fmt.Printf("appcheck: %d problem(s) in %s\n", len(problems), pkg)
			failed = true
			continue
		}
		kind := "full package"
		if searchTime(pkg) {
			kind = "search-time package"
		}
		fmt.Printf("✓ appcheck: %s (%s) passes the package rules\n", pkg, kind)
	}
	if failed {
		os.Exit(1)
	}
}

// searchTime tells the search-time package by its name.
func searchTime(pkg string) bool { return strings.HasSuffix(filepath.Base(pkg), "-searchtime.tgz") }

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
	st := searchTime(pkg)
	required := []string{"app.manifest", "LICENSE", "README.md", "default/app.conf", "default/props.conf",
		"default/eventtypes.conf", "default/tags.conf", "metadata/default.meta"}
	if !st {
		required = append(append(required, "README/inputs.conf.spec", "default/inputs.conf", binDecl), bins...)
	}
	for _, req := range required {
		fl, ok := files[appID+"/"+req]
		if !ok {
			bad("missing %s", req)
			continue
		}
		if strings.Contains(req, "/bin/") && fl.mode&0o111 == 0 {
			bad("%s is not executable", req)
		}
	}
	if st {
		// Nothing that runs, and no input: the package goes where no input may run.
		for _, name := range order {
			fl := files[name]
			rel := strings.TrimPrefix(name, appID+"/")
			if fl.dir {
				continue
			}
			if slices.Contains(strings.Split(rel, "/"), "bin") || fl.mode&0o111 != 0 {
				bad("the search-time package holds a binary or executable: %s", rel)
			}
			if rel == "default/inputs.conf" || rel == "README/inputs.conf.spec" {
				bad("the search-time package holds an input: %s", rel)
			}
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
	if appConf["id"]["name"] != appID {
		bad("app.conf [id] name is %q: it must be the package id %s", appConf["id"]["name"], appID)
	}
	if l := len(appConf["ui"]["label"]); l < 5 || l > 80 {
		bad("app.conf [ui] label must be 5 to 80 characters")
	}
	inputs := parseConf(string(files[appID+"/default/inputs.conf"].data))
	for stanza, kv := range inputs {
		if strings.Contains(stanza, "://") && kv["disabled"] != "1" && kv["disabled"] != "true" {
			bad("default/inputs.conf enables input %s: ship none enabled", stanza)
		}
	}
	if !st && inputs["defender_alerts"]["start_by_shell"] != "false" {
		bad("default/inputs.conf [defender_alerts] must set start_by_shell = false (signals go to the binary, not a shell)")
	}
	// TRUNCATE: Splunk must not cut an alert the reader accepted (a cut alert is broken JSON).
	props := parseConf(string(files[appID+"/default/props.conf"].data))
	for _, sourcetype := range sourcetypes {
		if tr := props[sourcetype]["TRUNCATE"]; tr != strconv.Itoa(defender.MaxRecord) {
			bad("default/props.conf [%s] TRUNCATE is %q: it must be %d, the largest record the reader accepts (defender.MaxRecord)", sourcetype, tr, defender.MaxRecord)
		}
	}
	// Stored secrets: only admins read or write them.
	meta := parseConf(string(files[appID+"/metadata/default.meta"].data))
	if pw, ok := meta["passwords"]; !ok {
		bad("metadata/default.meta has no [passwords] stanza restricting stored secrets to admin and sc_admin")
	} else {
		for _, perm := range []string{"read", "write"} {
			if roles := accessRoles(pw["access"], perm); !slices.Equal(roles, []string{"admin", "sc_admin"}) {
				bad("metadata/default.meta [passwords] %s is %v: it must be admin and sc_admin only", perm, roles)
			}
		}
	}
	// One version everywhere.
	var manifest struct {
		SchemaVersion string `json:"schemaVersion"`
		Info          struct {
			ID                      struct{ Name, Version string }    `json:"id"`
			License                 struct{ Name, Text, URI *string } `json:"license"`
			CommonInformationModels map[string]string                 `json:"commonInformationModels"`
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
		bad("versions differ: app.conf [launcher] %q, app.manifest %q", version, manifest.Info.ID.Version)
	}
	if appConf["id"]["version"] != version {
		bad("versions differ: app.conf [id] %q, [launcher] %q", appConf["id"]["version"], version)
	}
	suffix := "-" + version + ".tgz"
	if st {
		suffix = "-" + version + "-searchtime.tgz"
	}
	if !strings.HasSuffix(pkg, suffix) {
		bad("the package name does not carry version %s (want …%s)", version, suffix)
	}
	// The license: named in the manifest, its text in the package.
	lic := manifest.Info.License
	if lic.Name == nil || !strings.Contains(*lic.Name, "Apache") || !strings.Contains(*lic.Name, "2.0") {
		bad("app.manifest license.name must name the Apache License 2.0")
	}
	if lic.Text == nil || path.Clean(*lic.Text) != "LICENSE" {
		bad("app.manifest license.text must point at the package's LICENSE file")
	}
	if l := string(files[appID+"/LICENSE"].data); !strings.Contains(l, "Apache License") || !strings.Contains(l, "Version 2.0") {
		bad("LICENSE is not the Apache License 2.0 text")
	}
	// The CIM version the mapping needs.
	if strings.Contains(string(files[appID+"/default/props.conf"].data), "mitre_technique_id") {
		got := manifest.Info.CommonInformationModels["Alerts"]
		if v, ok := strings.CutPrefix(strings.ReplaceAll(got, " ", ""), ">="); !ok || !atLeast(v, minCIMForMitre) {
			bad("app.manifest commonInformationModels Alerts is %q: the mapping fills mitre_technique_id, so it needs >=%s", got, minCIMForMitre)
		}
	}
	// The binary declaration.
	if st {
		return p, nil
	}
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
	// The build facts of each binary, and its SHA-256 against the packaged bytes.
	declared := parseBinDecl(string(files[appID+"/"+binDecl].data))
	for _, b := range bins {
		d, ok := declared[b]
		if !ok {
			bad("%s does not declare %s", binDecl, b)
			continue
		}
		for _, k := range []string{"sha256", "go", "commit", "build"} {
			if d[k] == "" {
				bad("%s: %s has no %s", binDecl, b, k)
			}
		}
		if fl, ok := files[appID+"/"+b]; ok {
			if sum := sha256.Sum256(fl.data); d["sha256"] != hex.EncodeToString(sum[:]) {
				bad("%s declares SHA-256 %s for %s, the packaged file's is %x", binDecl, d["sha256"], b, sum)
			}
		}
		if !strings.Contains(d["build"], "go build") || !strings.Contains(d["build"], b) {
			bad("%s: the build command of %s does not build it", binDecl, b)
		}
	}
	for b := range declared {
		if !slices.Contains(bins, b) {
			bad("%s declares %s, which the package does not hold", binDecl, b)
		}
	}
	// Run this machine's binary: its version and build facts, and its scheme against the spec.
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
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err != nil || lines[0] != "defender_alerts "+version {
			bad("defender_alerts version says %q, app.conf %q", lines[0], version)
		}
		facts := map[string]string{}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ": "); ok {
				facts[k] = v
			}
		}
		if d := declared[bins[0]]; d != nil && (facts["commit"] != d["commit"] || facts["go"] != d["go"]) {
			bad("%s says commit %q, go %q; %s declares commit %q, go %q", bins[0], facts["commit"], facts["go"], binDecl, d["commit"], d["go"])
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
