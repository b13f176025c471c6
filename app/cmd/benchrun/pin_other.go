//go:build unix && !linux

package main

// allowedCPUs: pinning uses Linux's taskset; elsewhere the bench does not pin.
func allowedCPUs() []int { return nil }
