# certview_exporter — see README.md. `make test` is the test command CI runs.
GO        ?= go
BINARY    ?= certview_exporter
PKG       := github.com/certview-exporter/certview_exporter
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w \
	-X github.com/prometheus/common/version.Version=$(VERSION) \
	-X github.com/prometheus/common/version.Revision=$(REVISION) \
	-X github.com/prometheus/common/version.Branch=$(BRANCH) \
	-X github.com/prometheus/common/version.BuildUser=make \
	-X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
# The API client must stay covered: `make test` fails below this.
CERTVIEW_MIN_COVERAGE ?= 80

.PHONY: all test cover-certview bench vet

all: test

vet:
	$(GO) vet ./...

test: vet cover-certview
	$(GO) test -race -count=1 ./...

# Coverage of the certview package (the simulator counted with it), with a floor.
cover-certview:
	@$(GO) test -race -count=1 -coverpkg=./certview/... -coverprofile=coverage-certview.out ./certview/ >/dev/null
	@total=$$($(GO) tool cover -func=coverage-certview.out | awk '/^total:/ {sub(/%/, "", $$3); print $$3}'); \
	echo "certview coverage: $$total% (floor $(CERTVIEW_MIN_COVERAGE)%)"; \
	awk -v t="$$total" -v m="$(CERTVIEW_MIN_COVERAGE)" 'BEGIN { exit (t + 0 < m + 0) }' || { echo "certview coverage below $(CERTVIEW_MIN_COVERAGE)%"; exit 1; }

# Benchmarks, each reported as a ratio to a baseline from the same run.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=$${BENCHTIME:-1x} ./... | tee bench.out
	@awk -f .ci/benchratio.awk bench.out
