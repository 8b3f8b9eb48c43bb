// Package hugepage asks Linux to back the Go heap with transparent huge
// pages.
//
// On the virtual machines backups run on, a first touch of a 4 KiB page
// costs about 16 µs (measured: 64 MiB in 270 ms; with huge pages 22 ms).
// A stream backup or restore touches 150-250 MiB of fresh memory, and
// opening a repository derives its key with scrypt, which fills 64 MiB;
// page faults were the largest single cost of a small backup. Most Linux
// distributions set transparent huge pages to "madvise", and the Go runtime
// does not advise its heap, so the process does it itself.
package hugepage

// DefaultReserve is how much heap Enable maps and advises up front: more
// than a stream backup or restore touches (docs/benchmarks.md).
const DefaultReserve = 320 << 20
