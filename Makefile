# pg-standby — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/pg-standby

.PHONY: all build test vet demo deps clean fuzz man deb rpm lintian e2e FORCE bench

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pg-standby

deps:
	scripts/install-deps.sh

vet:
	@fmt=$$(gofmt -l cmd internal); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

# Unit and integration tests against real PostgreSQL 15, 17 and 18
# (PGSTANDBY_TEST_PG), with the race detector. As root, the 17/18 rootfs are
# built first when missing (cached; scripts/pg-rootfs.sh); otherwise those
# versions skip with the reason. -parallel 4: the parallel tests of
# cmd/pg-standby (waiting(t)) mostly wait on throttled copies; on 2 cores
# their 3-version phase took 356 s at go test's default (GOMAXPROCS, 2)
# and 201 s at 4.
PGSTANDBY_TEST_PG ?= 15,17,18
TEST_PARALLEL ?= 4
test: vet
	@if [ "$$(id -u)" = 0 ]; then for v in $$(echo '$(PGSTANDBY_TEST_PG)' | tr , ' '); do \
	  case $$v in 17|18) scripts/pg-rootfs.sh $$v || exit 1;; esac; done; fi
	$(GO) test -race -count=1 -parallel $(TEST_PARALLEL) -timeout 45m ./...

# Short runs of every fuzz target (longer: FUZZTIME=5m make fuzz).
FUZZTIME ?= 10s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# A throwaway local primary with data, a pg-standby backup into a new
# instance, the standby started, and proof that it replicates.
demo: deps build
	scripts/demo.sh

# --- packages (packaging/README.md) -------------------------------------------
# The version: git describe, made valid for dpkg and rpm.
PKG_VERSION  := $(shell packaging/version.sh)
PKG_ARCH     ?= $(shell $(GO) env GOARCH)
# The D-Bus policy shipped in /usr/share/dbus-1/system.d/.
DBUS_POLICY  ?= packaging/dbus/pg-standby.conf
NFPM         := $(GO) tool nfpm
# Dates in the man page and changelog: the commit's, so a rebuild is identical.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

# The packaged binary: static, no build paths, version of the package.
dist/pg-standby: FORCE
	@mkdir -p dist
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false \
	  -ldflags '-s -w -X main.version=$(PKG_VERSION)' -o $@ ./cmd/pg-standby

man: dist/pg-standby.8.gz
dist/pg-standby.8.gz: packaging/pg-standby.8.md FORCE
	@mkdir -p dist
	sed -e 's|@VERSION@|$(PKG_VERSION)|' \
	    -e "s|@DATE@|$$(date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%d)|" $< \
	  | $(GO) tool go-md2man > dist/pg-standby.8
	gzip -9nf dist/pg-standby.8

# Debian's changelog names the package version; the RPM gets the same text.
dist/changelog.Debian.gz: FORCE
	@mkdir -p dist
	{ printf 'pg-standby (%s-1) unstable; urgency=medium\n\n' '$(PKG_VERSION)'; \
	  printf '  * Built from git %s.\n' "$$(git describe --tags --always --dirty)"; \
	  printf '  * Upstream changes: git log; documentation: README.md.\n\n'; \
	  printf ' -- %s  %s\n' "$$(sed -n 's/^maintainer: //p' packaging/nfpm.yaml)" \
	    "$$(date -u -R -d @$(SOURCE_DATE_EPOCH))"; } > dist/changelog.Debian
	gzip -9nc dist/changelog.Debian > $@
	cp $@ dist/changelog.gz

PKG_INPUTS := dist/pg-standby dist/pg-standby.8.gz dist/changelog.Debian.gz

deb: $(PKG_INPUTS)
	@test -f '$(DBUS_POLICY)' || { echo "missing $(DBUS_POLICY) (set DBUS_POLICY=FILE)"; exit 1; }
	rm -f dist/*.deb
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' DBUS_POLICY='$(DBUS_POLICY)' \
	  $(NFPM) package --config packaging/nfpm.yaml --packager deb --target dist/
	@ls -l dist/*.deb

rpm: $(PKG_INPUTS)
	@test -f '$(DBUS_POLICY)' || { echo "missing $(DBUS_POLICY) (set DBUS_POLICY=FILE)"; exit 1; }
	rm -f dist/*.rpm
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' DBUS_POLICY='$(DBUS_POLICY)' \
	  $(NFPM) package --config packaging/nfpm.yaml --packager rpm --target dist/
	@ls -l dist/*.rpm

# No errors, no warnings (the deliberate ones are overridden, with reasons,
# in packaging/lintian-overrides; see packaging/README.md).
lintian: deb
	@command -v lintian >/dev/null || { echo "lintian missing: apt-get install lintian"; exit 1; }
	lintian --info --display-info --fail-on error,warning dist/*.deb

# The whole user story in a booted Debian 12 (systemd 252) container: needs
# root; installs systemd-container, mmdebstrap and zstd if missing.
e2e: deb
	scripts/e2e/run.sh dist/pg-standby_$(PKG_VERSION)-1_$(PKG_ARCH).deb

FORCE:

# pg-standby against pg_basebackup -Fp -Xstream and cp -a + sync on a
# throwaway local primary per shape (BENCH_SHAPE=pgbench|manyfiles|mixed, a
# comma list, default all; BENCH_SCALE=140 is about 2.1 GiB, BENCH_TABLES=20000
# small tables, BENCH_MIXED_SCALE=100 + BENCH_MIXED_TABLES=10000; BENCH_RUNS=5):
# a table per shape on stdout, bench-results.json beside it. Every run writes
# to a new loop-mounted ext4, which needs root (BENCH_FRESH_FS=0 to skip; postgres
# runs as the postgres user). All three shapes take about 40 minutes on 2 cores.
# BENCH_PG=15|17|18 picks the primary's major, BENCH_SCENARIO=contenders|retry|
# resync|all (default contenders, the above) adds issue 15's resume and resync
# figures, bytes counted on the wire by a proxy: see docs/bench.md.
bench: build
	$(GO) run ./cmd/pg-standby-bench -pg-standby $(BIN) -json bench-results.json

clean:
	rm -rf bin dist
