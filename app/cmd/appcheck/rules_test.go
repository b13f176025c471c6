package main

import (
	"bytes"
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
