//go:build tools

// Package codegen pins controller-gen (deep-copy functions and CRDs); it
// has its own module so its dependencies never move MinIO's (hack/tools)
// or the product's.
package codegen

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
