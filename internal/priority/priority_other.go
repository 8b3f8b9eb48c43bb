//go:build !linux

// Package priority applies the CPU and I/O priority a step asks for
// (runtimeSettings.container.nice and ionice, passed as NICE_ADJUSTMENT,
// IONICE_CLASS and IONICE_CLASS_DATA) to the current process.
package priority

import (
	"fmt"
	"os"
)

// FromEnv refuses the priorities named in the environment: steps run on
// Linux nodes, and only Linux keeps them per thread as applied there.
func FromEnv() error {
	for _, k := range []string{"NICE_ADJUSTMENT", "IONICE_CLASS", "IONICE_CLASS_DATA"} {
		if os.Getenv(k) != "" {
			return fmt.Errorf("%s is applied on Linux only: unset it here", k)
		}
	}
	return nil
}
