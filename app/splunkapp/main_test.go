package splunkapp

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

// A stanza's run sets GOMAXPROCS to one (app/procs); the tests keep the test process's own.
func TestMain(m *testing.M) {
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		os.Setenv("GOMAXPROCS", strconv.Itoa(runtime.GOMAXPROCS(0)))
	}
	os.Exit(m.Run())
}
