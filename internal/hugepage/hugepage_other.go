//go:build !linux

package hugepage

// Enable does nothing outside Linux.
func Enable(reserve int) (int64, error) { return 0, nil }
