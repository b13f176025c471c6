package main

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"ta-defender-alerts/app/defender"
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
