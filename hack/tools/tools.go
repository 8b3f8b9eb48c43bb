//go:build tools

// Package tools pins the test-only binaries (MinIO for S3 tests) that
// hack/build-tools.sh builds into bin/. They live in their own module so the
// product's go.mod carries only what the product runs.
package tools

import (
	_ "github.com/minio/minio"
)
