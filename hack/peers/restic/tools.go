//go:build tools

// Package tools pins restic v0.18.1, which hack/bench compares against. Its
// own module keeps restic's dependencies out of the product's go.mod.
package tools

import _ "github.com/restic/restic/cmd/restic"
