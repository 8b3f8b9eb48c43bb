package testserver

import (
	"os"
	"sync"
	"testing"
)

// Shared holds the servers one test package starts once and uses from many
// tests (a MinIO, say). Its cleanups wait for Stop, which the package's
// TestMain calls after m.Run: a server started with the first test's T
// would otherwise stop when that test ends, and one started with cleanups
// dropped kept running after the tests, with its directory (seen: MinIO
// processes and a hundred directories left in /tmp by earlier runs).
type Shared struct {
	mu       sync.Mutex
	cleanups []func()

	minioOnce sync.Once
	minio     *MinIO

	ferretOnce sync.Once
	ferret     *FerretDB
}

// FerretDB returns the package's FerretDB server, started for test t on
// first use; tests keep to databases of their own.
func (s *Shared) FerretDB(t testing.TB) *FerretDB {
	t.Helper()
	s.ferretOnce.Do(func() { s.ferret = StartFerretDB(s.For(t)) })
	if s.ferret == nil {
		StartFerretDB(t)
	}
	return s.ferret
}

// MinIO returns the package's MinIO server, started for test t on first
// use. Where MinIO is missing, t skips, or fails when servers are
// required, as does every later caller.
func (s *Shared) MinIO(t testing.TB) *MinIO {
	t.Helper()
	s.minioOnce.Do(func() { s.minio = StartMinIO(s.For(t)) })
	if s.minio == nil {
		StartMinIO(t) // reports the skip or failure for this test too
	}
	return s.minio
}

// For returns a testing.TB for starting a shared server from test t: it
// reports failures through t, and keeps cleanups and temporary
// directories until Stop.
func (s *Shared) For(t testing.TB) testing.TB { return &sharedT{TB: t, s: s} }

// Stop runs the cleanups of every server started through For, last first.
func (s *Shared) Stop() {
	s.mu.Lock()
	fs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

type sharedT struct {
	testing.TB
	s *Shared
}

func (st *sharedT) Cleanup(f func()) {
	st.s.mu.Lock()
	st.s.cleanups = append(st.s.cleanups, f)
	st.s.mu.Unlock()
}

func (st *sharedT) TempDir() string {
	d, err := os.MkdirTemp("", "stash-shared-")
	if err != nil {
		st.Fatal(err)
	}
	st.Cleanup(func() { os.RemoveAll(d) })
	return d
}
