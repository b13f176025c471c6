//go:build unix

package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Pinning for the feeds part (-feed-pin). The stand-in serving the Graph feed works about
// three times as hard as for the endpoint feed (it filters and renders 500-alert pages 250
// times: 30 s of CPU against 11 s for 100,000 alerts), and on a small machine it shares the
// product's cores. A production collector's APIs are on other machines. With pinning on, the
// stand-in runs on the first CPU the bench may use and the product on the others, so each
// feed's CPU is the product's work alone, on fewer CPUs (on 2 CPUs: one, whatever GOMAXPROCS
// says); off, both share every CPU (as in the other parts of the bench).

type pinning struct {
	standin, product []string // command prefixes (taskset -c …), nil when off
	about            string   // for the report
}

// feedPinning reads the -feed-pin setting: auto (on where it can be: Linux, 2 CPUs or more
// allowed to the bench, taskset installed), on (fail where it cannot be), off.
func feedPinning(mode string) (pinning, error) {
	switch mode {
	case "off":
		return pinning{about: "not pinned: the stand-in and the product share every CPU"}, nil
	case "auto", "on":
	default:
		return pinning{}, fmt.Errorf("-feed-pin %q: want auto, on or off", mode)
	}
	taskset, err := exec.LookPath("taskset")
	cpus := allowedCPUs() // nil where it cannot tell
	if len(cpus) < 2 || err != nil {
		why := fmt.Sprintf("pinning needs Linux, 2 CPUs the bench may use and taskset (here %d CPUs known, taskset: %v)", len(cpus), err == nil)
		if mode == "on" {
			return pinning{}, fmt.Errorf("-feed-pin on: %s", why)
		}
		return pinning{about: "not pinned: " + why}, nil
	}
	others := make([]string, len(cpus)-1)
	for i, c := range cpus[1:] {
		others[i] = strconv.Itoa(c)
	}
	list := strings.Join(others, ",")
	return pinning{
		standin: []string{taskset, "-c", strconv.Itoa(cpus[0])},
		product: []string{taskset, "-c", list},
		about:   fmt.Sprintf("pinned: the stand-in on CPU %d, the product on CPU %s (of %d the bench may use)", cpus[0], list, len(cpus)),
	}, nil
}

// command is name with args, behind the prefix (taskset execs the program in its own process:
// the rusage measured is the program's).
func command(prefix []string, name string, args ...string) (string, []string) {
	if len(prefix) == 0 {
		return name, args
	}
	return prefix[0], append(append(append([]string(nil), prefix[1:]...), name), args...)
}
