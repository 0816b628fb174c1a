# certview_exporter — see README.md. `make test` is the test command CI runs.
SHELL     := /bin/bash
GO        ?= go
BINARY    ?= certview_exporter
PKG       := github.com/certview-exporter/certview_exporter
# The version is the VERSION file's (see CHANGELOG.md and "Releasing" in the README).
VERSION   ?= $(shell cat VERSION)
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
HELM_VERSION ?= v3.22.0
# GoReleaser v2.17 and later need a module the Go proxy here refuses.
GORELEASER_VERSION ?= v2.16.0
GORELEASER ?= $(GOBIN)/goreleaser
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
LISTEN    ?= :9856
HELM      ?= $(GOBIN)/helm
CHART     := deploy/helm/certview-exporter
MANIFESTS := deploy/kubernetes/certview-exporter.yaml
# The plain manifests: the chart with an existing Secret and a PVC for the snapshot.
MANIFEST_ARGS := certview-exporter $(CHART) --namespace monitoring \
	--set credentials.existingSecret=certview-exporter-credentials --set persistence.enabled=true

.PHONY: bench-dashboards bench-budget release-snapshot goreleaser fuzz all build run run-stack test cover-certview bench vet lint e2e e2e-deps clean helm manifests manifests-check deploy-checks

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

# The demo under Debian's Prometheus (with the shipped rules) and Alertmanager, on
# loopback, with the compose stack's files; it prints each kind of certificate alert as
# it fires. Needs the prometheus and prometheus-alertmanager packages.
run-stack: build
	bash deploy/local/run-stack.sh

# go vet, plus golangci-lint at a pinned version, installed from the Go module proxy.
lint: vet
	@$(GO) version -m $(GOBIN)/golangci-lint 2>/dev/null | grep -q "mod[[:space:]]*github.com/golangci/golangci-lint/v2[[:space:]]*$(GOLANGCI_LINT_VERSION)[[:space:]]" || \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOBIN)/golangci-lint run --build-tags e2e ./...

# Dashboards and rules through a real Prometheus (Debian's, with the shipped rules) at
# 1k/3k and 100k/300k: every dashboard query's time and series, rule-group evaluation
# times, Prometheus's memory with and without rules, active alerts. Not part of `make
# test`; it takes about half an hour and 20 GB. BENCH_SIZES, BENCH_ROUNDS and BENCH_OUT
# (a file for the Markdown table) tune it.
bench-dashboards:
	$(GO) test -count=1 -tags 'e2e dashbench' -run TestDashboardBench -timeout 90m -v .

# The series budget before and after in one run: bench-dashboards on BENCH_BASE (default
# 16ef0bd, the code before it, in a temporary git worktree) and then on the code checked
# out, and the largest size's Prometheus figures of both side by side with their ratios
# (BENCH_OUT, default bench-budget.md). About an hour and 20 GB.
bench-budget:
	bash .ci/bench-budget

# End-to-end: the rules under promtool; the built binary against the simulator; the demo
# under a real Prometheus (with the shipped rules) and Alertmanager, every dashboard query
# and the alerts checked; the dashboards against Grafana's schema; the same rules on
# VictoriaMetrics (vmagent scraping the shards, vmalert) beside Prometheus, with the same
# alerts.
e2e: e2e-deps deploy-checks
	promtool check rules deploy/prometheus/rules.yml deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	$(GO) test -count=1 -tags e2e -v -run 'TestEndToEnd|TestDemoMode|TestConfigCheckFlag|TestMonitoringStack|TestVictoriaMetricsStack|TestStandardTierScaledDown|TestKilledHalfwayThroughTheFirstListing|TestSlowReadersAtScale|TestOversizedRecordsAtTheBinary' .
	bash .ci/check-dashboards.sh

# Helm, pinned, from the Go module proxy.
helm:
	@$(GO) version -m $(HELM) 2>/dev/null | grep -q "mod[[:space:]]*helm.sh/helm/v3[[:space:]]*$(HELM_VERSION)[[:space:]]" || \
		GOBIN=$(GOBIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# GoReleaser, pinned, from the Go module proxy.
goreleaser:
	@$(GO) version -m $(GORELEASER) 2>/dev/null | grep -q "mod[[:space:]]*github.com/goreleaser/goreleaser/v2[[:space:]]*$(GORELEASER_VERSION)[[:space:]]" || \
		GOBIN=$(GOBIN) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

# Every release tarball (linux, darwin, windows on amd64 and arm64) and sha256sums.txt in
# dist/, as a snapshot of the working tree; then the checksums are verified and the
# linux/amd64 binary must print this VERSION.
release-snapshot: goreleaser
	$(GORELEASER) check
	VERSION=$(VERSION) $(GORELEASER) release --snapshot --clean --skip=publish
	cd dist && sha256sum --check --strict sha256sums.txt
	@tarball=dist/$(BINARY)-$(VERSION)-snapshot.linux-amd64.tar.gz; \
	for os in linux darwin windows; do for arch in amd64 arm64; do \
		test -f dist/$(BINARY)-$(VERSION)-snapshot.$$os-$$arch.tar.gz || { echo "missing the $$os/$$arch tarball"; exit 1; }; done; done; \
	tar -tzf $$tarball | sort; \
	for f in LICENSE README.md config.example.yml $(BINARY); do tar -tzf $$tarball | grep -qx "$(BINARY)-$(VERSION)-snapshot.linux-amd64/$$f" || { echo "the tarball lacks $$f"; exit 1; }; done; \
	dir=$$(mktemp -d); tar -xzf $$tarball -C $$dir; \
	got=$$($$dir/$(BINARY)-$(VERSION)-snapshot.linux-amd64/$(BINARY) --version 2>&1 | head -1); rm -rf $$dir; echo "$$got"; \
	echo "$$got" | grep -q "version $(VERSION)-snapshot " || { echo "the linux/amd64 binary does not print version $(VERSION)-snapshot"; exit 1; }

# Plain Kubernetes manifests for users without Helm, rendered from the chart.
manifests: helm
	@mkdir -p $(dir $(MANIFESTS))
	@{ echo "# Generated by 'make manifests' from $(CHART); do not edit."; \
	   echo "# Create the Secret first: kubectl -n monitoring create secret generic certview-exporter-credentials --from-file=password=./qualys_password"; \
	   echo "# and set qualys.username (or platform/api_url) in the ConfigMap below."; \
	   $(HELM) template $(MANIFEST_ARGS) 2>/dev/null; } > $(MANIFESTS)
	@echo "wrote $(MANIFESTS)"

# The committed manifests must match the chart.
manifests-check: helm
	@$(HELM) template $(MANIFEST_ARGS) 2>/dev/null | diff -u <(tail -n +4 $(MANIFESTS)) - >/dev/null || \
		{ echo "$(MANIFESTS) is out of date: run make manifests"; exit 1; }
	@echo "manifests-check: $(MANIFESTS) matches the chart"

# The Dockerfile (lint, shape, and its build command giving a static binary), the Helm
# chart (lint, templates), the compose stack and the systemd unit.
deploy-checks: helm manifests-check
	bash .ci/check-dockerfile.sh
	$(HELM) lint $(CHART) --set credentials.password=x
	HELM=$(HELM) $(GO) test -count=1 -tags e2e -v -run 'TestHelmChart|TestComposeStack|TestSystemdUnit' .

# Debian's Prometheus 2.42 (with promtool) and Alertmanager, when missing (needs root).
e2e-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null && \
		command -v victoria-metrics >/dev/null && command -v vmagent >/dev/null && command -v vmalert >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager victoria-metrics; }

# Fuzzing, each target for a bounded time (FUZZTIME, default 20s). A crasher is saved
# under the package's testdata/fuzz and then runs as a regression test in make test.
FUZZ_TARGETS := FuzzDecodePage:./certview/ FuzzListPageHTTP:./certview/ FuzzRateLimitHeaders:./certview/ FuzzParseConfig:./collector/config/ FuzzReadSnapshot:./collector/store/
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime=$${FUZZTIME:-20s} -fuzzminimizetime=5s $$pkg > fuzz-$$name.log 2>&1; rc=$$?; \
		echo "$$name: $$(grep -o 'execs: [0-9]*' fuzz-$$name.log | tail -1 | cut -d' ' -f2) executions, $$(grep -o 'total: [0-9]*' fuzz-$$name.log | tail -1 | cut -d' ' -f2) corpus entries"; \
		if [ $$rc -ne 0 ]; then cat fuzz-$$name.log; exit 1; fi; \
	done

clean:
	rm -rf $(BINARY) bench.out bench-budget*.md coverage-certview.out fuzz-*.log dist

vet:
	$(GO) vet ./...

test: vet cover-certview
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'TestFirstListingAtTheStandardBudget|TestRestartDuringTheFirstListing' ./collector/poll/

# Coverage of the certview package (the simulator counted with it), with a floor.
cover-certview:
	@$(GO) test -race -count=1 -coverpkg=./certview/... -coverprofile=coverage-certview.out ./certview/ >/dev/null
	@total=$$($(GO) tool cover -func=coverage-certview.out | awk '/^total:/ {sub(/%/, "", $$3); print $$3}'); \
	echo "certview coverage: $$total% (floor $(CERTVIEW_MIN_COVERAGE)%)"; \
	awk -v t="$$total" -v m="$(CERTVIEW_MIN_COVERAGE)" 'BEGIN { exit (t + 0 < m + 0) }' || { echo "certview coverage below $(CERTVIEW_MIN_COVERAGE)%"; exit 1; }

# Benchmarks, each reported as a ratio to a baseline from the same run, then the scale
# table (1k/3k, 10k/30k, 100k/300k certificates/instances against the simulator; about
# five minutes; SCALE_SIZES=1000,10000 limits the sizes), then the API calls of full and
# incremental polls at 100k/300k (about a minute; BUDGET_SIZE=1000,3000 shrinks it), then
# the time to the first snapshot and the daily full listing's cost on the Standard tier
# and a 2,000-an-hour tier, on the fake clock (about five minutes).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=$${BENCHTIME:-1x} ./certview/ ./collector/... | tee bench.out
	@awk -f .ci/benchratio.awk bench.out
	$(GO) test -tags scale -count=1 -run TestScaleTable -timeout 60m -v . | grep -E '^\|' | tee -a bench.out
	$(GO) test -tags scale -count=1 -run TestIncrementalBudgetTable -timeout 60m -v ./collector/poll/ | grep -E '^(\||\()' | tee -a bench.out
	$(GO) test -tags scale -count=1 -run TestFullListingBudgetTable -timeout 60m -v ./collector/poll/ | grep -E '^\|' | tee -a bench.out
