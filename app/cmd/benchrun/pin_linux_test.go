package main

import (
	"runtime"
	"slices"
	"testing"
)

// The bench pins to the CPUs it may use, by number: as many as Go counts, in order.
func TestAllowedCPUs(t *testing.T) {
	cpus := allowedCPUs()
	if len(cpus) != runtime.NumCPU() || !slices.IsSorted(cpus) {
		t.Fatalf("allowed CPUs %v; Go counts %d", cpus, runtime.NumCPU())
	}
	p, err := feedPinning("auto")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.standin) > 0 && (len(p.standin) != 3 || len(p.product) != 3) {
		t.Fatalf("pinning %+v", p)
	}
	t.Log(p.about)
}
