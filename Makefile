# Stash: see README.md. Every target works on a fresh machine with Go.
SHELL := /usr/bin/env bash
GO ?= go

.PHONY: all build demo test test-unit fuzz bench bench-peers bench-db bench-mongo bench-es bench-galera bench-operator tools images cluster-up cluster-down fmt vet clean

all: build

build:
	hack/build-stash.sh

# The main job: a real backup and restore of a directory and of a stream
# into a local, encrypted repository.
demo:
	hack/demo.sh

# Every test, with the real servers they need (MinIO is built into bin/).
test: tools
	hack/test.sh

# The unit and in-process tests alone: no servers needed; the integration
# tier (real servers, the real cluster) skips, saying so.
test-unit:
	$(GO) test ./...

# Every fuzz target for FUZZTIME each (default 30s); their seed corpora
# already run in `make test`.
fuzz:
	FUZZTIME=$(or $(FUZZTIME),30s) hack/fuzz.sh

tools:
	hack/build-tools.sh

bench:
	hack/bench/bench.sh

bench-peers: build
	hack/build-peers.sh
	hack/bench/peers.sh
	hack/bench/peers.sh report

bench-db:
	hack/bench/db.sh

# The MongoDB addon against FerretDB's own floor (cursor reads, bulk
# inserts): docs/benchmarks.md#mongodb.
bench-mongo:
	hack/build-tools.sh
	$(GO) run ./hack/bench/mongo -docs 200000 -rounds 3

# The Elasticsearch addon against the test server's floor (sliced scans,
# parallel _bulk) and elasticdump: docs/benchmarks.md#elasticsearch.
bench-es:
	hack/install-servers.sh
	$(GO) run ./hack/bench/es -docs 200000 -rounds 3 -elasticdump

bench-galera:
	hack/install-servers.sh
	$(GO) run ./hack/bench/galera -mb 512 -rounds 3

# 1 000 BackupConfigurations against a real kube-apiserver: time to Ready
# and the operator's peak RSS.
bench-operator: build
	hack/build-kube.sh
	$(GO) run ./hack/bench/operator -n 1000 -stash bin/stash

# The e2e images (bin/images/*.tar) and a real single-node cluster.
images:
	hack/images.sh

cluster-up: images
	hack/build-kube.sh all
	hack/cluster/cluster.sh up

cluster-down:
	hack/cluster/cluster.sh down

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
