# swarm-operator
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
GOLANGCI_LINT_VERSION ?= v2.15.0
IMG ?= swarm-operator:dev
# Go test flags for `make test`; the whole suite needs root (sandbox Swarms) and a Docker engine.
TEST_FLAGS ?= -count=1 -timeout 60m

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the API markers.
	$(CONTROLLER_GEN) rbac:roleName=swarm-operator-manager crd paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify
verify: generate manifests ## Fail when generated files are stale.
	@git diff --exit-code -- api config || { echo "Generated files are stale: run 'make generate manifests' and commit." >&2; exit 1; }
	@test -z "$$(git status --porcelain -- api config)" || { git status --porcelain -- api config; echo "Untracked generated files: commit them." >&2; exit 1; }

.PHONY: fmt
fmt:
	go fmt ./...

.PHONY: vet
vet:
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: test
test: manifests generate ## Run every test: envtest (built once, cached) and sandbox Swarms (needs root and dockerd).
	hack/install-prereqs.sh
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" SWARM_SANDBOX_IMAGES="$$(hack/build-numbers-images.sh)" SOURCE_CONTROLLER_ASSETS="$$(hack/source-controller-assets.sh)" go test $(TEST_FLAGS) ./...

# The packages whose tests need neither a control plane nor Docker.
UNIT_PKGS ?= ./controllers/... ./internal/cli/... ./internal/compose/... ./internal/memswarm/... ./internal/metrics/... ./internal/placement/... ./internal/reconcile/... ./internal/redact/... ./internal/stack/... ./internal/swarm/... ./internal/window/... ./api/... ./cmd/...

.PHONY: unit
unit: | $(LOCALBIN) ## Run the fast tests (controllers' logic on the in-memory Swarm; no Docker, no control plane) and print the statement coverage of the controllers and their domain packages.
	SWARM_OPERATOR_UNIT_ONLY=1 go test -count=1 -coverpkg=./controllers/...,./internal/stack/...,./internal/reconcile/...,./internal/window/...,./internal/placement/... -coverprofile=$(LOCALBIN)/unit.cover $(UNIT_PKGS)
	go tool cover -func=$(LOCALBIN)/unit.cover | tail -1

.PHONY: demo
demo: manifests ## Run the release routine on a local control plane and sandbox swarm (root, Linux).
	hack/install-prereqs.sh
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" SWARM_SANDBOX_IMAGES="$$(hack/build-numbers-images.sh)" go run ./hack/demo

.PHONY: demo-clean
demo-clean: ## Remove what an interrupted demo or test run left behind.
	hack/sandbox.sh clean

.PHONY: bench
bench: manifests generate ## Run the benchmarks (compose; operator end to end on a sandbox swarm, root) and print their figures; see docs/benchmarks.md.
	hack/install-prereqs.sh
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" SWARM_SANDBOX_IMAGES="$$(hack/build-numbers-images.sh)" go test -run '^$$' -bench . -benchtime 1x -timeout 150m ./internal/compose ./test/bench

##@ Build

.PHONY: build
build: generate ## Build the operator binary.
	go build -o $(LOCALBIN)/swarm-operator ./cmd

.PHONY: kubectl-swarm
kubectl-swarm: ## Build the kubectl plugin (bin/kubectl-swarm, bin/kubectl_complete-swarm); put bin/ on your PATH for `kubectl swarm`.
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/kubectl-swarm ./cmd/kubectl-swarm
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/kubectl_complete-swarm ./cmd/kubectl_complete-swarm

VERSION ?= v0.0.0-dev
PLUGIN_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64

.PHONY: plugin-dist
plugin-dist: ## Build the plugin's archives for krew into dist/ and write dist/swarm.yaml (VERSION=vX.Y.Z).
	rm -rf dist && mkdir -p dist && cp krew/swarm.yaml dist/swarm.yaml
	for p in $(PLUGIN_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=""; [ "$$os" = windows ] && ext=.exe; d=dist/$$os-$$arch; mkdir -p $$d; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -o $$d/kubectl-swarm$$ext ./cmd/kubectl-swarm; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -o $$d/kubectl_complete-swarm$$ext ./cmd/kubectl_complete-swarm; \
	  cp LICENSE $$d/ 2>/dev/null || true; \
	  tar -C $$d -czf dist/kubectl-swarm_$${os}_$${arch}.tar.gz .; \
	  sum=$$(sha256sum dist/kubectl-swarm_$${os}_$${arch}.tar.gz | cut -d' ' -f1); \
	  sed -i "s/SHA256_$${os}_$${arch}/$$sum/" dist/swarm.yaml; \
	done
	sed -i "s/VERSION/$(VERSION)/g" dist/swarm.yaml

.PHONY: run
run: manifests generate ## Run the operator against the current kubeconfig.
	go run ./cmd

.PHONY: docker-build
docker-build: generate ## Build the operator image (FROM scratch; no registry needed).
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/swarm-operator ./cmd
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the current cluster.
	kubectl apply -k config/crd

.PHONY: uninstall
uninstall: manifests
	kubectl delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator into the current cluster (IMG names the image).
	kubectl kustomize config/default | sed 's|image: swarm-operator:dev|image: $(IMG)|' | kubectl apply -f -

.PHONY: undeploy
undeploy:
	kubectl delete --ignore-not-found -k config/default

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

$(GOLANGCI_LINT): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
