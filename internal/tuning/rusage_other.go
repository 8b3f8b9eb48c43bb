//go:build !unix

package tuning

import "errors"

// WriteRusage is not available here.
func WriteRusage(string) error { return errors.New("resource usage reports need a unix system") }
