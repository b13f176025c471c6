package main

import "golang.org/x/sys/unix"

// allowedCPUs lists the CPUs this process may run on (its affinity: a container's cpuset
// need not start at 0), in order.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c, n := 0, set.Count(); len(cpus) < n; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}
