# Stash: see README.md. Every target works on a fresh machine with Go.
SHELL := /usr/bin/env bash
GO ?= go

.PHONY: all build demo test test-unit bench tools fmt vet clean

all: build

build:
	$(GO) build -o bin/stash ./cmd/stash

# The main job: a real backup and restore of a directory and of a stream
# into a local, encrypted repository.
demo:
	hack/demo.sh

# Every test, with the real servers they need (MinIO is built into bin/).
test: tools
	hack/test.sh

# Unit and integration tests without building servers (tests needing a
# missing server skip).
test-unit:
	$(GO) test ./...

tools:
	hack/build-tools.sh

bench:
	hack/bench/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
