# routerd — build, test, benchmark and demo.
#
#   make demo    run three routers on 127.0.0.1 and show an event become a claim
#   make test    everything that must pass (format, vet, schema, unit + netns tests, demo)
#   make qualify the eight federation qualification scenarios with real routers (evidence in
#                bin/qualify; as root in network namespaces); QUALIFY_ARGS adds flags
#   make bench   benchmarks, one package at a time; prints BENCH <name> <value> <unit> lines
#                and writes bin/bench.json (name, value, unit, package, commit)

SHELL     := /bin/bash
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X routerd.net/routerd/cmd/internal/buildinfo.Version=$(VERSION)
CMDS      := routerd routerd-eventd routerctl routerd-schema
# Bundled plugins: every plugins/<name>/ with a main.go becomes bin/plugins/<name>.wasm.
PLUGINS   := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
WASM_ENV  := GOOS=wasip1 GOARCH=wasm
TEST_TIMEOUT ?= 12m
FUZZTIME  ?= 8s
# Minimizing a new interesting input may take 60s by default, during which the fuzzer
# executes nothing; a short FUZZTIME that ends mid-minimization fails the run with
# "context deadline exceeded". Bound it.
FUZZMINIMIZETIME ?= 1s
# Fuzz targets run briefly by `make test` (package:Target); longer: make fuzz FUZZTIME=5m
FUZZ_TARGETS := federation/transport:FuzzReceiverVerify federation/event:FuzzDecode abi:FuzzDecode schemas:FuzzDecode host/internal/jsonvalid:FuzzValid host/internal/preempt:FuzzInstrument abi/guest:FuzzDecodeRequest abi/guest:FuzzHostResponse abi/guest/jsonw:FuzzAppendString abi/guest:FuzzQuickHostResponses abi/guest:FuzzParseUTC host/capability/kv:FuzzQuickGet

.PHONY: all build plugins test unit fuzz vet fmt-check check-schema schema bench demo demo-cloud qualify deps clean help

all: build plugins

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build routerd, routerd-eventd, routerctl, routerd-schema into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

plugins: ## build every plugins/<name> to bin/plugins/<name>.wasm
	@mkdir -p $(BIN)/plugins
	@for p in $(PLUGINS); do \
		echo "wasm  plugins/$$p -> $(BIN)/plugins/$$p.wasm"; \
		$(WASM_ENV) $(GO) build -buildmode=c-shared -o $(BIN)/plugins/$$p.wasm ./plugins/$$p || exit 1; \
	done

schema: ## regenerate schemas/ from the Kind registry
	$(GO) run ./cmd/routerd-schema -out schemas

check-schema: ## fail if schemas/ differs from a fresh generation
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(GO) run ./cmd/routerd-schema -out $$tmp >/dev/null && \
	for f in $$tmp/*.json; do \
		if ! cmp -s $$f schemas/$$(basename $$f); then \
			echo "schemas/$$(basename $$f) is stale: run 'make schema' and commit it"; diff -u schemas/$$(basename $$f) $$f | head -40; exit 1; \
		fi; \
	done; echo "check-schema: schemas/ is up to date"

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet (host and wasm guest code)
	$(GO) vet ./...
	$(WASM_ENV) $(GO) vet ./abi/... ./plugins/... ./testdata/plugins/...

unit: deps plugins ## go test ./... (netns tests run when root), the preemption stop flag under -race
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -count=1 -race -run '^TestDeadlineStopsSpinningGuest$$' ./host/

fuzz: ## run each fuzz target for FUZZTIME (the HMAC verifier, event, ABI and config decoders, the output validator)
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz  ./$$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./$$pkg >/tmp/routerd-fuzz.$$$$.log 2>&1 || { cat /tmp/routerd-fuzz.$$$$.log; rm -f /tmp/routerd-fuzz.$$$$.log; exit 1; }; \
		rm -f /tmp/routerd-fuzz.$$$$.log; \
	done

test: fmt-check vet check-schema build unit fuzz demo demo-cloud ## everything that must pass

bench: build plugins ## benchmarks, one package at a time: BENCH <name> <value> <unit> lines (bin/bench.log, bin/bench.json)
	@GO=$(GO) BIN=$(BIN) ./.ci/bench

demo: deps build plugins ## three routers on 127.0.0.1: event on A -> claim on B and C
	$(BIN)/routerd demo --plugin-dir $(BIN)/plugins --config-dir testdata/demo

demo-cloud: deps build plugins ## the demo plus the provider steps: plan, gate, approval, execution against a fake EC2
	$(BIN)/routerd demo --plugin-dir $(BIN)/plugins --config-dir testdata/demo --cloud

qualify: deps build plugins ## the eight federation scenarios with real routers; evidence in bin/qualify (QUALIFY_ARGS="--cycles 3")
	$(BIN)/routerctl qualify --bin-dir $(BIN) --plugin-dir $(BIN)/plugins --trap-source testdata/plugins/trap \
		--evidence-dir $(BIN)/qualify $(QUALIFY_ARGS)

deps: ## install what a fresh machine lacks (apt as root: iproute2, nftables, gcc, ping); make unit and demo run it
	@./.ci/deps

clean: ## remove build output
	rm -rf $(BIN)
