//go:build !linux

package galera

import "os"

// dontNeed does nothing where the page cache takes no advice.
func dontNeed(*os.File) {}
