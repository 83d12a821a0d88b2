# pg-standby — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/pg-standby

.PHONY: all build test vet demo deps clean fuzz

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pg-standby

deps:
	scripts/install-deps.sh

vet:
	@fmt=$$(gofmt -l cmd internal); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

# Unit and integration tests against real PostgreSQL 15, with the race detector.
test: vet
	$(GO) test -race -count=1 -timeout 30m ./...

# Short runs of every fuzz target (longer: FUZZTIME=5m make fuzz).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# A throwaway local primary with data, a pg-standby backup into a new
# instance, the standby started, and proof that it replicates.
demo: deps build
	scripts/demo.sh

clean:
	rm -rf bin dist
