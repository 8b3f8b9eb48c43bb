//go:build !linux

package prefault

// populate does nothing where there is no MADV_POPULATE_WRITE; touching
// the pages faults them in.
func populate([]byte) {}
