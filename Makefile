# syncer: the two commands of the README are `make demo` and `make test`.
GO      ?= go
BIN     ?= bin/syncer
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/syncer-dev/syncer/syncer.Version=$(VERSION)

.PHONY: build test vet fmt-check cross patched-check staticcheck tools demo demo-stop bench bench-quick bench-tier faults faults-quick clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/syncer

vet:
	$(GO) vet ./...

# staticcheck, pinned; installed from the Go module proxy into bin/tools
# (.ci/run runs `make tools` first; make test installs it if missing).
STATICCHECK_VERSION := v0.8.2
STATICCHECK := bin/tools/staticcheck-$(STATICCHECK_VERSION)

$(STATICCHECK):
	GOBIN=$(CURDIR)/bin/tools GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv bin/tools/staticcheck $@

tools: $(STATICCHECK)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The agent runs on Windows and macOS nodes too (SPEC.md, Platforms).
cross:
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/syncer
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/syncer

# Each copy in third_party (go-fuse, ftpserverlib) must stay its release plus
# our patch, nothing else.
patched-check:
	GO=$(GO) bash third_party/patched.sh check

test: vet staticcheck fmt-check cross patched-check
	$(GO) test -race -count=1 -timeout 30m ./...

demo: build
	bash scripts/demo.sh

bench: build
	bash scripts/bench/run.sh

bench-quick: build
	QUICK=1 bash scripts/bench/run.sh

# The storage tier's figures (README, "Storage tier"): root, Ceph packages.
bench-tier:
	bash scripts/bench/tier.sh

# Fault, load and abuse suite (README, "Faults and abuse"); needs root for
# the disk-full test. faults-quick is the bounded version CI runs.
faults:
	bash scripts/faults/run.sh

faults-quick:
	QUICK=1 bash scripts/faults/run.sh

clean:
	rm -rf bin

demo-stop:
	@if [ -f demo/serve.pid ]; then kill $$(cat demo/serve.pid) 2>/dev/null && echo "historian stopped" || true; rm -f demo/serve.pid; fi
