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

GOLANGCI_LINT_VERSION ?= v2.15.0
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
LISTEN    ?= :9856

.PHONY: all build run test cover-certview bench vet lint e2e e2e-deps clean

all: build test

# A static binary carrying its version, as the Dockerfile builds it.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BINARY) .

# The exporter against its in-process simulator: no subscription needed.
run: build
	@echo ""
	@echo "certview_exporter --demo: an in-process CertView simulator with 2,000 certificates and 5,000 instances."
	@echo "  metrics:   http://localhost$(LISTEN)/metrics"
	@echo "  landing:   http://localhost$(LISTEN)/"
	@echo "  readiness: http://localhost$(LISTEN)/-/ready   (ready after the first poll, about a second)"
	@echo "Stop with Ctrl-C."
	@echo ""
	./$(BINARY) --demo --web.listen-address=$(LISTEN) $(RUN_ARGS)

# go vet, plus golangci-lint at a pinned version, installed from the Go module proxy.
lint: vet
	@test -x $(GOBIN)/golangci-lint && $(GOBIN)/golangci-lint version 2>/dev/null | grep -q "$(patsubst v%,%,$(GOLANGCI_LINT_VERSION))" || \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOBIN)/golangci-lint run --build-tags e2e ./...

# End-to-end: the rules under promtool; the built binary against the simulator; the demo
# under a real Prometheus (with the shipped rules) and Alertmanager, every dashboard query
# and the alerts checked; the dashboards against Grafana's schema.
e2e: e2e-deps
	promtool check rules deploy/prometheus/rules.yml deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	$(GO) test -count=1 -tags e2e -v -run 'TestEndToEnd|TestDemoMode|TestConfigCheckFlag|TestMonitoringStack' .
	bash .ci/check-dashboards.sh

# Debian's Prometheus 2.42 (with promtool) and Alertmanager, when missing (needs root).
e2e-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager; }

clean:
	rm -f $(BINARY) bench.out coverage-certview.out

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
