package repository

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// BenchmarkBackupStream measures a fresh stream backup into a local
// repository (64 MiB, half text, half random). hack/bench/bench.sh compares
// the whole binary with restic on 1 GiB.
func BenchmarkBackupStream(b *testing.B) {
	data := testStream(64<<20, 7)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		o := Options{Location: localOptionsB(b).Location, Password: "pw"}
		if err := Init(ctx, o); err != nil {
			b.Fatal(err)
		}
		r, err := Open(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		r.Close(ctx)
		b.StartTimer()
	}
}

// BenchmarkRestoreStream measures restoring a 64 MiB stream snapshot.
func BenchmarkRestoreStream(b *testing.B) {
	data := testStream(64<<20, 8)
	ctx := context.Background()
	r := openNew(b, Options{Location: localOptionsB(b).Location, Password: "pw"})
	if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"}); err != nil {
		b.Fatal(err)
	}
	s, err := r.Resolve(ctx, Latest, Filter{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := r.RestoreStream(ctx, s, "", io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBackupStreamHash compares content hashes for new repositories.
func BenchmarkBackupStreamHash(b *testing.B) {
	data := testStream(64<<20, 9)
	ctx := context.Background()
	old := defaultHash
	defer func() { defaultHash = old }()
	for _, algo := range []string{"BLAKE2B-256-128", "BLAKE3-256-128"} {
		b.Run(algo, func(b *testing.B) {
			defaultHash = algo
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				b.StopTimer()
				o := Options{Location: localOptionsB(b).Location, Password: "pw"}
				if err := Init(ctx, o); err != nil {
					b.Fatal(err)
				}
				r, err := Open(ctx, o)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				r.Close(ctx)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkLockShared measures what a backup or restore spends on its
// shared lock before it starts: writing the lock, listing the others, and
// reloading the index (of a repository with 20 snapshots), then releasing.
func BenchmarkLockShared(b *testing.B) {
	ctx := context.Background()
	r := openNew(b, Options{Location: localOptionsB(b).Location, Password: "pw"})
	for i := range 20 {
		if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(testStream(1<<20, uint64(i))), BackupOptions{Host: "host-0"}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		held, err := r.lockShared(ctx)
		if err != nil {
			b.Fatal(err)
		}
		held.Release()
	}
}
