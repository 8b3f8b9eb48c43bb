// Package hugepage asks Linux to back the Go heap with transparent huge
// pages.
//
// On virtual machines a first touch of a 4 KiB page can be slow, and a
// huge page needs one fault for 512 of them. A stream backup or restore
// touches a few hundred MiB of fresh memory, and opening a repository
// derives its key with scrypt, which fills 64 MiB; page faults were the
// largest single cost of a small backup (docs/benchmarks-history.md). Most Linux
// distributions set transparent huge pages to "madvise", and the Go runtime
// does not advise its heap, so the process does it itself.
package hugepage

// DefaultReserve is how much heap Enable maps and advises up front: more
// than a stream backup or restore touches (docs/benchmarks.md).
const DefaultReserve = 320 << 20
