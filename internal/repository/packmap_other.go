//go:build !unix

package repository

import "errors"

// canMap says withMappedRange maps files here.
const canMap = false

func withMappedRange(string, int64, int64, func([]byte) error) error {
	return errors.ErrUnsupported
}
