# Bitmask in Go. `make run` starts the demo, `make test` runs the tests.
GO ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
# How long `make fuzz` runs each fuzz target: a few seconds in CI, minutes
# by hand (make fuzz FUZZTIME=10m).
FUZZTIME ?= 5s
BIN := bin

.PHONY: all build test lint bench run clean tools e2e e2e-scale fuzz

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

test:
	$(GO) test -race -count=1 -timeout 12m ./...

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

tools:
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

bench:
	bash scripts/bench.sh

e2e:
	bash scripts/e2e.sh

# e2e-scale (issue 15): PostgreSQL and a real S3 server (versitygw),
# installed or built when missing, two leapd instances on them, end to
# end (scripts/e2e-scale.sh).
e2e-scale:
	GO=$(GO) bash scripts/e2e-scale.sh

fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

run: build
	$(BIN)/bitmask-demo -data bitmask-demo

clean:
	rm -rf $(BIN)

# package (issue 12): the .deb of HEAD in dist/ (docs/packaging.md);
# package-check builds it twice and fails unless the two are identical.
.PHONY: package package-check
package:
	GO=$(GO) bash scripts/package.sh

package-check:
	GO=$(GO) bash scripts/package.sh --check
