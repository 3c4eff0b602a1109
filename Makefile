# Federation Gateway. `make run` starts the whole gateway locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO         ?= go
GOARCH     ?= arm64
GOOS       ?= linux
BUILD_DIR  ?= .build/lambda
TOOLS      := $(CURDIR)/.tools
VENV       := $(TOOLS)/venv

STATICCHECK_VERSION := v0.8.2
CFN_LINT_VERSION    := 1.58.0
SAM_CLI_VERSION     := 1.170.0
MOTO_VERSION        := 5.2.5
CHECKOV_VERSION     := 3.3.30

# The tools live under .tools/; a changed pin installs the new version on the next use.
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
CFN_LINT    := $(VENV)/bin/cfn-lint
SAM         := $(VENV)/bin/sam
# cfn-lint, the SAM CLI and moto's server (the tests' second DynamoDB engine) share one venv.
PY_TOOLS    := $(VENV)/.installed-cfn-lint-$(CFN_LINT_VERSION)-sam-$(SAM_CLI_VERSION)-moto-$(MOTO_VERSION)
# The packages whose tests run on moto too: the store, the directory, routing, identity,
# the token bridge (its saga's writes), and the engine's own checks.
MOTO_PKGS   := ./infra/localtest/... ./shared/dynamo/... ./shared/directory/... ./shared/routing/... ./shared/identity/... ./shared/bridge/...
# checkov, the template's policy check, has a venv of its own: pip finds no set of packages
# that satisfies checkov 3.3.30, aws-sam-cli 1.170.0 and moto 5.2.5 together (their boto3
# pins conflict), and apart, a change of one pin never reinstalls the others.
CHECKOV_VENV := $(TOOLS)/checkov-$(CHECKOV_VERSION)
CHECKOV      := $(CHECKOV_VENV)/.installed
# sam build copies CodeUri (the whole repository, .tools/ included) per function unless it
# builds in source; the makefile build only writes to ARTIFACTS_DIR, so in source is safe.
SAM_BUILD_FLAGS ?= --build-in-source --parallel

# Every AWS::Serverless::Function of the template, by logical ID.
FUNCTIONS := $(shell sed -n '/^Resources:/,/^Outputs:/s/^  \([A-Za-z0-9]*Function\):$$/\1/p' template.yaml)

# How SAM (BuildMethod: makefile) and `make build` build a function: a static, stripped
# bootstrap for provided.al2023. ARTIFACTS_DIR is set by `sam build`.
GOBUILD = CGO_ENABLED=0 GOOS=$(GOOS) GOARCH=$(GOARCH) $(GO) build -tags lambda.norpc -trimpath \
	-ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap

# The dev stack (make run, make invoke) is built with the functions' flags, so that the
# packages it shares with them (the AWS SDK, the gateway's own) compile once for both, and
# the functions' packages right after it, so that the dev stack's own builds of them only
# link. A first run compiles for a few minutes: with-progress.sh says so every 8 s.
BIN       := .build/bin
HOSTBUILD  = CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'
# go list -export compiles packages into the build cache as go build would, without linking.
HOSTLIST   = CGO_ENABLED=0 $(GO) list -export -tags lambda.norpc -trimpath -f '{{.Export}}'

.PHONY: help run devstack test gotest gotest-moto lint vet staticcheck template-lint policy-check build invoke bench clean deploy tools

help: ## Show the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# DEVSTACK_STARTED lets the dev stack count its time to ready from the start of the build.
run: ## Run the whole gateway locally (local AWS endpoint :4566, HTTP API :3000). CONFIG=<file> to use another config.
	@export DEVSTACK_STARTED=$$(date +%s%N) && $(MAKE) --no-print-directory devstack && \
		exec $(BIN)/devstack run $(if $(CONFIG),-config $(CONFIG)) $(RUN_FLAGS)

devstack: ## Build the dev stack and compile the functions' packages (the first time takes a few minutes).
	@infra/with-progress.sh "compiling the dev stack and the functions" "(a first run compiles the AWS emulator and every function: a few minutes)" \
		sh -c "$(HOSTBUILD) -o $(BIN)/devstack ./infra/cmd/devstack && $(HOSTLIST) ./functions/... >/dev/null"

test: lint gotest gotest-moto ## Every test: vet, staticcheck, template lint, go test -race (kumo), then the DynamoDB tests on moto.

gotest:
	$(GO) test -race -count=1 ./...

# kumo, the local endpoint's emulator, is lenient where DynamoDB is strict: the store,
# directory, routing and identity tests run again on moto's DynamoDB (infra/localtest).
gotest-moto: $(PY_TOOLS) ## The store, directory, routing, identity and bridge tests on moto's DynamoDB.
	LOCALTEST_DYNAMODB=moto LOCALTEST_MOTO_PYTHON=$(VENV)/bin/python $(GO) test -race -count=1 $(MOTO_PKGS)

lint: vet staticcheck template-lint policy-check ## go vet, staticcheck, cfn-lint, sam validate --lint and checkov.

vet:
	$(GO) vet ./...
	@if $(GO) list -deps ./functions/... | grep -qx net/http/httptest; then echo "a function links net/http/httptest (test code only)"; exit 1; fi

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

# sam validate needs no credentials; the region only pins the lint's region (no network).
template-lint: $(PY_TOOLS)
	$(CFN_LINT) template.yaml
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template-file template.yaml

# The template's policy check: least-privilege IAM, encryption at rest, log retention,
# point-in-time recovery. Every rule it waives is waived in the template, on the
# resource, with the reason (Metadata: checkov: skip:). infra/policy adds the gateway's own
# rule: checkov's IAM checks do not read the SAM functions' inline policies. It then runs on
# infra/policytest/refused.yaml, which each check must refuse, so a check that stopped
# firing fails the lint.
policy-check: $(CHECKOV)
	PYTHONDONTWRITEBYTECODE=1 $(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--external-checks-dir infra/policy --compact --quiet --skip-download
	PYTHONDONTWRITEBYTECODE=1 $(CHECKOV_VENV)/bin/checkov --file infra/policytest/refused.yaml --framework cloudformation \
		--external-checks-dir infra/policy --quiet --skip-download -o json 2>/dev/null | $(CHECKOV_VENV)/bin/python infra/policytest/expect.py

build: ## Build every function as linux/arm64 bootstrap under .build/lambda/<LogicalId>/.
	@for fn in $(FUNCTIONS); do \
		echo "build $$fn"; \
		$(MAKE) --no-print-directory build-$$fn ARTIFACTS_DIR=$(BUILD_DIR)/$$fn || exit 1; \
	done

build-StatusFunction:
	$(GOBUILD) ./functions/status

build-DiscoverFunction:
	$(GOBUILD) ./functions/discover

build-SyncFunction:
	$(GOBUILD) ./functions/sync

build-RouteFunction:
	$(GOBUILD) ./functions/route

build-VerifyFunction:
	$(GOBUILD) ./functions/verify

build-BridgeFunction:
	$(GOBUILD) ./functions/bridge

build-BridgeTaskFunction:
	$(GOBUILD) ./functions/bridgetask

build-OperatorFunction:
	$(GOBUILD) ./functions/operator

build-ReconcileFunction:
	$(GOBUILD) ./functions/reconcile

build-WsConnectFunction:
	$(GOBUILD) ./functions/wsconnect

build-WsDisconnectFunction:
	$(GOBUILD) ./functions/wsdisconnect

build-WsMessageFunction:
	$(GOBUILD) ./functions/wsmessage

build-EventsFunction:
	$(GOBUILD) ./functions/events

invoke: ## Invoke one function like `sam local invoke`, without Docker: FN=<LogicalId> EVENT=events/<file>.json
	@test -n "$(FN)" || { echo "usage: make invoke FN=<LogicalId> EVENT=events/<file>.json" >&2; exit 2; }
	@$(MAKE) --no-print-directory devstack
	@$(BIN)/devstack invoke -function $(FN) $(if $(EVENT),-event $(EVENT)) $(if $(CONFIG),-config $(CONFIG))

bench: ## Benchmarks: cold start and size, directory writes/requests/reads, routing latency/ops/throughput, event streams.
	$(GO) run ./infra/cmd/bench $(BENCH_FLAGS)

deploy: $(PY_TOOLS) ## sam build && sam deploy (--guided until samconfig.toml exists; AWS credentials from your environment).
	$(SAM) build $(SAM_BUILD_FLAGS)
	$(SAM) deploy $(if $(wildcard samconfig.toml),,--guided)

clean: ## Remove build outputs (keeps the installed tools).
	rm -rf .build .aws-sam

tools: $(STATICCHECK) $(PY_TOOLS) $(CHECKOV) ## Install staticcheck, cfn-lint, the SAM CLI, moto and checkov into .tools/.

$(STATICCHECK):
	GOBIN=$(@D) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

# One pip run for all three, so the resolver keeps cfn-lint within what aws-sam-cli accepts
# and moto[server]'s own needs (cfn-lint, Flask, boto3) within both.
$(PY_TOOLS): | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet cfn-lint==$(CFN_LINT_VERSION) aws-sam-cli==$(SAM_CLI_VERSION) 'moto[server]==$(MOTO_VERSION)'
	rm -f $(VENV)/.installed-*
	touch $@

$(CHECKOV):
	rm -rf $(CHECKOV_VENV)
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $@
