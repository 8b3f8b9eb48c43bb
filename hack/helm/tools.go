//go:build tools

// Package tools pins helm, which renders charts/stash for the end-to-end
// cluster (helm template). Its own module keeps helm's dependencies out of
// the product's go.mod.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
