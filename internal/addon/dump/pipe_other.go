//go:build !linux

package dump

import "os"

func newPipe() (r, w *os.File, err error) { return os.Pipe() }

func newOutputPipe() (r, w *os.File, err error) { return os.Pipe() }
