# migtrace — see README.md. Two commands matter to a new user:
#   make demo   a local live migration of a simulated VM, printing both tables
#   make test   installs what the tests need, then runs every test
GO       ?= go
BIN      := bin
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 10s
BENCHTIME ?= 1s
# Debian packages the tests use (command name:package), installed only
# when missing: jq is the report benchmark's baseline, prometheus runs the
# dashboards' queries, bpftrace the probe scripts, iproute2 (ip, tc) builds
# the two-host lab's namespaces and links, chromium looks at `report
# timeline`'s pages as a person would.
TEST_PKGS := jq:jq prometheus:prometheus promtool:prometheus bpftrace:bpftrace ip:iproute2 tc:iproute2 chromium:chromium

.PHONY: all build demo test test-deps test-go bench fuzz lint generate clean jaeger

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/migtrace ./cmd/migtrace

# The demo's trace stays in the git-ignored bin/ for `report timeline`.
demo: build
	$(BIN)/migtrace demo --trace-file $(BIN)/demo.jsonl
	@echo "where the time went: $(BIN)/migtrace report timeline -o html --output-file $(BIN)/demo-timeline.html $(BIN)/demo.jsonl"

test: test-deps lint jaeger test-go

# Installs the tools the tests run against, only when they are missing, so
# a fresh Debian machine needs nothing but `make test`.
test-deps:
	@missing=""; for cp in $(TEST_PKGS); do cmd=$${cp%%:*}; pkg=$${cp##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg";; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Jaeger v2 for the tracing component test, built from its own module
# (tracing/jaeger) into the git-ignored bin/, only when missing.
jaeger:
	tracing/jaeger/build.sh

# The tests that run migtrace as a process use bin/migtrace rather than
# each test binary linking its own (servertest.Binary).
test-go: build
	MIGTRACE_BINARY=$(CURDIR)/$(BIN)/migtrace $(GO) test -race -count=1 -timeout 15m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg; \
	  done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go.mod/go.sum are not tidy; run 'go mod tidy':"; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...
	GOOS=illumos $(GO) build ./...

generate:
	$(GO) generate ./...

clean:
	rm -rf $(BIN)

# bench-peer: QEMU against migtrace on the same guests (issue 16; results in
# docs/performance.md). It installs QEMU and nasm from Debian when missing
# (without Recommends: the benchmark needs no GUI), reassembles the QEMU
# guest from its source, builds migtrace and the benchmark, and runs
# PEER_RUNS migrations per case and system. PEER_FLAGS passes more flags,
# e.g. PEER_FLAGS='-cases idle256 -max-bandwidth 512MiB'.
PEER_PKGS  := qemu-system-x86_64:qemu-system-x86 nasm:nasm
PEER_RUNS  ?= 5
PEER_FLAGS ?=

.PHONY: bench-peer
bench-peer:
	@missing=""; for cp in $(PEER_PKGS); do cmd=$${cp%%:*}; pkg=$${cp##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	cd migrate/peerbench/guest && nasm -f bin -o guest.bin guest.asm
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/migtrace ./cmd/migtrace
	$(GO) build -o $(BIN)/peerbench ./migrate/peerbench/cmd/peerbench
	$(BIN)/peerbench -migtrace $(BIN)/migtrace -runs $(PEER_RUNS) $(PEER_FLAGS)
