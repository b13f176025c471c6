package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/splunkapp"
	"ta-defender-alerts/app/version"
)

func writeTGZ(t *testing.T, path string, files map[string]struct {
	mode int64
	body string
}) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for name, fl := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: fl.mode, Size: int64(len(fl.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(fl.body))
	}
	tw.Close()
	zw.Close()
}

func TestAppcheckFindsProblems(t *testing.T) {
	type f = struct {
		mode int64
		body string
	}
	pkg := filepath.Join(t.TempDir(), "TA-defender-alerts-9.9.9.tgz")
	writeTGZ(t, pkg, map[string]f{
		"TA-defender-alerts/default/app.conf":         {0o644, "[install]\nis_configured = true\n[launcher]\nversion = 1.0.0\n[ui]\nlabel = x\n"},
		"TA-defender-alerts/default/inputs.conf":      {0o644, "[defender_alerts://t1]\nclient_secret = hunter2\n"},
		"TA-defender-alerts/local/inputs.conf":        {0o644, ""},
		"TA-defender-alerts/.hidden":                  {0o644, ""},
		"TA-defender-alerts/default/run.sh":           {0o755, "#!/bin/sh"},
		"TA-defender-alerts/app.manifest":             {0o644, `{"schemaVersion":"2.0.0","info":{"id":{"name":"TA-defender-alerts","version":"2.0.0"}}}`},
		"TA-defender-alerts/README.md":                {0o644, "# TA\n"},
		"TA-defender-alerts/app/main.go":              {0o644, "package main"},
		"other/file":                                  {0o644, ""},
		"TA-defender-alerts/metadata/local.meta":      {0o644, ""},
		"TA-defender-alerts/default/hec.conf":         {0o644, "[x]\nhec = 8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8\n"},
		"TA-defender-alerts/README/inputs.conf.spec":  {0o644, ""},
		"TA-defender-alerts/linux_x86_64/bin/nothing": {0o644, ""},
	})
	problems, err := check(pkg)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{
		"outside the single top folder", "hidden file", "local/ must not ship", "local.meta", "executable outside a bin folder",
		"source or build file", "missing linux_x86_64/bin/defender_alerts", "sets client_secret", "token-looking value",
		"is_configured must be false", "label must be 5 to 80", "enables input", "versions differ", "Binary File Declaration",
		"does not carry version",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("appcheck missed %q; it said:\n%s", want, all)
		}
	}
}

// The version lives in four places that must agree, and the id in two.
func TestOneVersion(t *testing.T) {
	conf, err := os.ReadFile("../../../default/app.conf")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("../../../app.manifest")
	if err != nil {
		t.Fatal(err)
	}
	c := parseConf(string(conf))
	if c["launcher"]["version"] != version.Version || c["id"]["version"] != version.Version || !strings.Contains(string(manifest), `"version": "`+version.Version+`"`) {
		t.Errorf("app.conf [launcher] and [id], app.manifest and version.Version disagree (Go says %s)", version.Version)
	}
	if c["id"]["name"] != appID || c["package"]["id"] != appID {
		t.Errorf("app.conf [id] name %q and [package] id %q must both be %s", c["id"]["name"], c["package"]["id"], appID)
	}
}

type pkgFile = struct {
	mode int64
	body string
}

// repoApp reads the app's files from the repository, as build.sh packages them (paths
// relative to the app folder).
func repoApp(t *testing.T) map[string]pkgFile {
	t.Helper()
	root := "../../.."
	files := map[string]pkgFile{}
	add := func(rel string) {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		files[rel] = pkgFile{0o644, string(b)}
	}
	for _, f := range []string{"app.manifest", "LICENSE", "README.md"} {
		add(f)
	}
	for _, dir := range []string{"README", "default", "metadata"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			add(filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// fakeLinuxBinary is a stand-in for the linux binary: a script that answers version and
// --scheme as the real one does.
func fakeLinuxBinary(t *testing.T, ver, commit string) string {
	t.Helper()
	var scheme bytes.Buffer
	if err := splunkapp.WriteScheme(&scheme); err != nil {
		t.Fatal(err)
	}
	return "#!/bin/sh\ncase \"$1\" in\n" +
		"version) printf 'defender_alerts %s\\ncommit: %s\\ngo: %s\\n' '" + ver + "' '" + commit + "' '" + runtime.Version() + "';;\n" +
		"--scheme) cat <<'EOF'\n" + scheme.String() + "\nEOF\n;;\nesac\n"
}

const testCommit = "0123456789abcdef0123456789abcdef01234567"

// declare writes README/binaries.md for the binaries in files, as build.sh does.
func declare(files map[string]pkgFile) {
	var b strings.Builder
	b.WriteString("# Binaries in this package\n")
	for _, name := range bins {
		sum := sha256.Sum256([]byte(files[name].body))
		fmt.Fprintf(&b, "\n## %s\n\n- sha256: %x\n- go: %s\n- commit: %s\n- build: `CGO_ENABLED=0 go build -trimpath -o %s ./app/cmd/defender_alerts`\n",
			name, sum, runtime.Version(), testCommit, name)
	}
	files[binDecl] = pkgFile{0o644, b.String()}
}

func fullApp(t *testing.T) map[string]pkgFile {
	files := repoApp(t)
	files[bins[0]] = pkgFile{0o755, fakeLinuxBinary(t, version.Version, testCommit)}
	files[bins[1]] = pkgFile{0o755, "a darwin binary"}
	files[bins[2]] = pkgFile{0o755, "a windows binary"}
	declare(files)
	return files
}

func searchTimeApp(t *testing.T) map[string]pkgFile {
	files := repoApp(t)
	delete(files, "default/inputs.conf")
	delete(files, "README/inputs.conf.spec")
	return files
}

func writePkg(t *testing.T, name string, app map[string]pkgFile) string {
	t.Helper()
	files := map[string]pkgFile{}
	for rel, f := range app {
		files[appID+"/"+rel] = f
	}
	p := filepath.Join(t.TempDir(), name)
	writeTGZ(t, p, files)
	return p
}

// edit replaces old with new in one file of the app, failing if old is not there (so that a
// case cannot silently stop breaking what it names).
func edit(t *testing.T, files map[string]pkgFile, rel, old, new string) {
	t.Helper()
	f, ok := files[rel]
	if !ok || !strings.Contains(f.body, old) {
		t.Fatalf("%s has no %q to replace", rel, old)
	}
	f.body = strings.Replace(f.body, old, new, 1)
	files[rel] = f
}

// Each rule of the package, broken alone in an otherwise good package built from the
// repository's own files, is reported; the good packages pass.
func TestPackageRules(t *testing.T) {
	v := version.Version
	full := "TA-defender-alerts-" + v + ".tgz"
	st := "TA-defender-alerts-" + v + "-searchtime.tgz"
	linux := runtime.GOOS == "linux" && runtime.GOARCH == "amd64" // appcheck runs the linux binary only there
	tests := []struct {
		name      string
		pkg       string
		needLinux bool
		breakIt   func(t *testing.T, f map[string]pkgFile)
		want      string // "" means: no problem at all
	}{
		{name: "full package good", pkg: full},
		{name: "search-time package good", pkg: st},

		// 1: one id, one version.
		{name: "wrong [id] name", pkg: full, want: "[id] name",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "default/app.conf", "[id]\nname = TA-defender-alerts", "[id]\nname = TA-defender")
			}},
		{name: "no [id] stanza", pkg: full, want: "[id] name",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "default/app.conf", "[id]\nname = TA-defender-alerts\nversion = "+v+"\n", "")
			}},
		{name: "[id] version differs", pkg: full, want: "app.conf [id] \"9.9.9\"",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "default/app.conf", "[id]\nname = TA-defender-alerts\nversion = "+v, "[id]\nname = TA-defender-alerts\nversion = 9.9.9")
			}},
		{name: "manifest version differs", pkg: full, want: "app.manifest \"9.9.9\"",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "app.manifest", `"version": "`+v+`"`, `"version": "9.9.9"`)
			}},
		{name: "binary version differs", pkg: full, needLinux: true, want: "defender_alerts version says \"defender_alerts 9.9.9\"",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				f[bins[0]] = pkgFile{0o755, fakeLinuxBinary(t, "9.9.9", testCommit)}
				declare(f)
			}},
		{name: "search-time [id] name wrong", pkg: st, want: "[id] name",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "default/app.conf", "[id]\nname = TA-defender-alerts", "[id]\nname = TA-defender")
			}},
		{name: "search-time name lacks its kind", pkg: "TA-defender-alerts-" + v + "-search.tgz", want: "does not carry version",
			breakIt: func(t *testing.T, f map[string]pkgFile) {}},

		// 2: the binary declaration.
		{name: "declared SHA-256 does not match", pkg: full, want: "declares SHA-256",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				f[bins[1]] = pkgFile{0o755, "another darwin binary"} // after the declaration was written
			}},
		{name: "a binary undeclared", pkg: full, want: "does not declare windows_x86_64/bin/defender_alerts.exe",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				d := f[binDecl]
				d.body = d.body[:strings.Index(d.body, "\n## windows")]
				f[binDecl] = d
			}},
		{name: "no declaration file", pkg: full, want: "missing README/binaries.md",
			breakIt: func(t *testing.T, f map[string]pkgFile) { delete(f, binDecl) }},
		{name: "declared commit is not the binary's", pkg: full, needLinux: true, want: "declares commit",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				f[bins[0]] = pkgFile{0o755, fakeLinuxBinary(t, v, "feedfacefeedfacefeedfacefeedfacefeedface")}
				declare(f)
			}},

		// 3: the search-time package holds nothing that runs and no input.
		{name: "search-time package holds a binary", pkg: st, want: "holds a binary or executable: linux_x86_64/bin/defender_alerts",
			breakIt: func(t *testing.T, f map[string]pkgFile) { f[bins[0]] = pkgFile{0o755, "binary"} }},
		{name: "search-time package holds a non-executable bin file", pkg: st, want: "holds a binary or executable: bin/defender_alerts",
			breakIt: func(t *testing.T, f map[string]pkgFile) { f["bin/defender_alerts"] = pkgFile{0o644, "binary"} }},
		{name: "search-time package holds inputs.conf", pkg: st, want: "holds an input: default/inputs.conf",
			breakIt: func(t *testing.T, f map[string]pkgFile) { f["default/inputs.conf"] = repoApp(t)["default/inputs.conf"] }},
		{name: "search-time package holds the inputs spec", pkg: st, want: "holds an input: README/inputs.conf.spec",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				f["README/inputs.conf.spec"] = repoApp(t)["README/inputs.conf.spec"]
			}},

		// 4: license and CIM version.
		{name: "no LICENSE", pkg: full, want: "missing LICENSE",
			breakIt: func(t *testing.T, f map[string]pkgFile) { delete(f, "LICENSE") }},
		{name: "search-time package without LICENSE", pkg: st, want: "missing LICENSE",
			breakIt: func(t *testing.T, f map[string]pkgFile) { delete(f, "LICENSE") }},
		{name: "LICENSE is not Apache-2.0", pkg: full, want: "LICENSE is not the Apache License 2.0",
			breakIt: func(t *testing.T, f map[string]pkgFile) { f["LICENSE"] = pkgFile{0o644, "All rights reserved.\n"} }},
		{name: "manifest license empty", pkg: full, want: "license.name",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "app.manifest", `"name": "Apache License 2.0"`, `"name": null`)
			}},
		{name: "manifest license text points elsewhere", pkg: full, want: "license.text",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "app.manifest", `"text": "./LICENSE"`, `"text": "./LICENSE.txt"`)
			}},
		{name: "CIM older than the mapping needs", pkg: st, want: "commonInformationModels Alerts is \">=4.0\"",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "app.manifest", `"Alerts": ">=`+minCIMForMitre+`"`, `"Alerts": ">=4.0"`)
			}},

		// 6: start_by_shell.
		{name: "start_by_shell missing", pkg: full, want: "start_by_shell = false",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "default/inputs.conf", "start_by_shell = false", "")
			}},
		{name: "start_by_shell true", pkg: full, want: "start_by_shell = false",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "default/inputs.conf", "start_by_shell = false", "start_by_shell = true")
			}},

		// 8: TRUNCATE.
		{name: "TRUNCATE unbounded", pkg: full, want: "TRUNCATE is \"0\"",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "default/props.conf", "TRUNCATE = "+strconv.Itoa(defender.MaxRecord), "TRUNCATE = 0")
			}},
		{name: "TRUNCATE below the reader's limit", pkg: st, want: "TRUNCATE is \"10000\"",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "default/props.conf", "TRUNCATE = "+strconv.Itoa(defender.MaxRecord), "TRUNCATE = 10000")
			}},

		// 11: stored secrets for admins only.
		{name: "no [passwords] stanza", pkg: full, want: "no [passwords] stanza",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "metadata/default.meta", "[passwords]", "[savedsearches]")
			}},
		{name: "[passwords] readable by all", pkg: st, want: "[passwords] read is [*]",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "metadata/default.meta", "read : [ admin, sc_admin ], write : [ admin, sc_admin ]", "read : [ * ], write : [ admin, sc_admin ]")
			}},
		{name: "[passwords] writable by a power user", pkg: full, want: "[passwords] write is [admin power sc_admin]",
			breakIt: func(t *testing.T, f map[string]pkgFile) {
				edit(t, f, "metadata/default.meta", "read : [ admin, sc_admin ], write : [ admin, sc_admin ]", "read : [ admin, sc_admin ], write : [ admin, sc_admin, power ]")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needLinux && !linux {
				t.Skip("appcheck runs the packaged binary on linux/amd64 only")
			}
			files := searchTimeApp(t)
			if !strings.HasSuffix(tt.pkg, "-searchtime.tgz") && !strings.HasSuffix(tt.pkg, "-search.tgz") {
				files = fullApp(t)
			}
			if tt.breakIt != nil {
				tt.breakIt(t, files)
			}
			problems, err := check(writePkg(t, tt.pkg, files))
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(problems, "\n")
			if tt.want == "" && len(problems) > 0 {
				t.Errorf("a good package has problems:\n%s", all)
			}
			if tt.want != "" && !strings.Contains(all, tt.want) {
				t.Errorf("appcheck missed %q; it said:\n%s", tt.want, all)
			}
		})
	}
}

// The sourcetype's TRUNCATE is the reader's limit, so neither cuts what the other passed.
func TestPropsTruncateIsTheReaderLimit(t *testing.T) {
	b, err := os.ReadFile("../../../default/props.conf")
	if err != nil {
		t.Fatal(err)
	}
	if got := parseConf(string(b))["ms:defender:atp:alerts"]["TRUNCATE"]; got != strconv.Itoa(defender.MaxRecord) {
		t.Errorf("default/props.conf TRUNCATE = %q, defender.MaxRecord = %d", got, defender.MaxRecord)
	}
}

func TestAtLeast(t *testing.T) {
	tests := []struct {
		have, want string
		ok         bool
	}{
		{"5.0", "5.0", true}, {"5.0.1", "5.0", true}, {"6", "5.0", true}, {"4.20", "5.0", false},
		{"4.20.2", "4.9", true}, {"x", "5.0", false}, {"", "5.0", false},
	}
	for _, tt := range tests {
		if got := atLeast(tt.have, tt.want); got != tt.ok {
			t.Errorf("atLeast(%q, %q) = %v, want %v", tt.have, tt.want, got, tt.ok)
		}
	}
}
