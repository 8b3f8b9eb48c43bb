//go:build tools

// Package tools pins restic's rest-server v0.14.0, which the tests of the
// restic REST backend (internal/repository/restic) serve repositories from.
// Its own module keeps the server's dependencies out of the product's
// go.mod.
package tools

import _ "github.com/restic/rest-server/cmd/rest-server"
