package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "ta-defender-alerts/"

// sources lists the repository's non-test Go files under app/, relative to the repository root.
func sources(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, filepath.ToSlash(filepath.Join("app", p[len("../"):])))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d source files: run from app/archtest", len(files))
	}
	return files
}

// The feeds and the sinks meet in few places: bridge (the pump and its adapters), config (one
// settings table for both), metrics (one page for both), wiring (the one place that builds the
// collector), the check command, and the bench's raw relay (a baseline that must use the same
// decoder and encoder). Anywhere else, knowing both is a seam in the wrong place.
func TestFewKnowBothDefenderAndHEC(t *testing.T) {
	allowed := []string{"app/bridge/", "app/config/", "app/metrics/", "app/wiring/",
		"app/cmd/defender_alerts/check.go", "app/cmd/rawrelay/"}
	fset := token.NewFileSet()
	for _, f := range sources(t) {
		file, err := parser.ParseFile(fset, filepath.Join("..", "..", f), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		var def, hec bool
		for _, im := range file.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			def = def || p == module+"app/defender"
			hec = hec || p == module+"app/hec"
		}
		if def && hec && !slices.ContainsFunc(allowed, func(a string) bool { return strings.HasPrefix(f, a) }) {
			t.Errorf("%s imports both app/defender and app/hec: move what joins them to bridge or wiring", f)
		}
	}
}

// No source file grows past 400 lines: one file, one idea.
func TestFilesStaySmall(t *testing.T) {
	const limit = 400
	for _, f := range sources(t) {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n >= limit {
			t.Errorf("%s has %d lines (limit %d): split it by idea", f, n, limit)
		}
	}
}
