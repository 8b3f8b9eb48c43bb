//go:build !linux

package affinity

func allowed() (cpuSet, bool)                      { return cpuSet{}, false }
func setAll(cpuSet)                                {}
func procState(int) (state byte, cpu int, ok bool) { return 0, 0, false }
func threadAllowed(int) (cpuSet, bool)             { return cpuSet{}, false }
