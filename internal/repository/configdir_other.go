//go:build !unix

package repository

import (
	"errors"
	"os"
)

// lockOwner has no lock to take without flock: the directory is left to
// Close alone.
func lockOwner(string) (*os.File, error) { return nil, nil }

// ownerLockHeld treats every directory as owned, so that none is swept.
func ownerLockHeld(string) (bool, error) { return true, errors.ErrUnsupported }
