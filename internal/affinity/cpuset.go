package affinity

import "math/bits"

// cpuSet is a CPU mask as sched_setaffinity takes it: bit c of word c/64
// is CPU c.
type cpuSet [16]uint64

func count(s cpuSet) int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

func without(s cpuSet, cpu int) cpuSet {
	s[cpu/64] &^= 1 << (uint(cpu) % 64)
	return s
}
