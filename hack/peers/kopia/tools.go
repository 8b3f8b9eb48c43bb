//go:build tools

// Package tools pins the kopia CLI v0.22.3 (the version Velero ships), which
// the compatibility test runs against repositories this project writes and
// hack/bench compares against. Its own module keeps the CLI's dependencies
// out of the product's go.mod.
package tools

import _ "github.com/kopia/kopia"
