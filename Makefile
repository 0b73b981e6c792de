# batchai-operator: the commands a newcomer needs. `make demo` runs a Batch AI job end to end;
# `make test` runs everything CI runs. Each target first checks what it needs from the machine
# (hack/install-prereqs.sh, list in hack/prereqs.txt): it installs missing Debian packages as root, and
# otherwise stops in the first seconds with the command to run.
PYTHON ?= python3
PY ?= .venv/bin/python
PYTEST ?= .venv/bin/pytest
# Go's own install directory, also when it is not on PATH (sudo's secure_path leaves it out).
GO ?= $(or $(shell command -v go),/usr/local/go/bin/go)
export PYTHON

.PHONY: test lint unit integration e2e devcluster devcluster-down crds demo quickstart bench chaos venv kueue kind

# prereqs-TARGET: what TARGET needs from this machine (hack/install-prereqs.sh TARGET).
prereqs-%:
	@hack/install-prereqs.sh $*

venv: .venv/.installed
# A stamp file, not .venv/bin/python: that is a symlink, and make would read the interpreter's mtime.
.venv/.installed: pyproject.toml
	@hack/install-prereqs.sh --quiet unit
	[ -x .venv/bin/python ] || $(PYTHON) -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	hack/run-step "the Python environment (.venv: pip install -e '.[dev]')" "1 min" \
	  .venv/bin/pip install -q -e '.[dev]'
	touch $@

## Everything: lint (ruff, mypy, hadolint, shellcheck, go vet), unit tests, end-to-end tests on the dev
## cluster's real nodes, integration tests against the local control plane. The cluster comes up first
## (the first time, that builds the toolchain and the images), outside the tests' time limits.
test: prereqs-test venv lint kueue kind
	hack/devcluster up
	$(PYTEST) tests -q

# Every shell script: those with a shell #! line, and the sourced ones (*.sh, versions.env).
SHELL_SCRIPTS = $(sort $(shell grep -rlIE '^\#!(/usr/bin/env |/bin/)(ba)?sh' .ci hack operator tests examples bench) \
  $(wildcard hack/*.sh operator/batchai_operator/launcher/*.sh) hack/versions.env)

lint: prereqs-lint venv
	.venv/bin/ruff check operator tests bench
	.venv/bin/mypy
	.venv/bin/hadolint Dockerfile
	shellcheck $(SHELL_SCRIPTS)
	cd hack && $(GO) vet ./...
	@cd hack && unformatted=$$($(dir $(GO))gofmt -l .) && [ -z "$$unformatted" ] || { echo "gofmt -w needed: $$unformatted"; exit 1; }

## Pure Python: needs neither Go, nor root, nor sshd (tests that need them are in the other tiers).
unit: prereqs-unit venv
	$(PYTEST) tests/unit -q

integration: prereqs-integration venv kueue kind
	hack/devcluster up
	$(PYTEST) tests/integration -q

e2e: prereqs-e2e venv
	hack/devcluster up
	$(PYTEST) tests/e2e -q

## Kueue (tests/integration/test_kueue.py) and kind (tests/integration/test_kind_validation.py), pinned in
## hack/versions.env, each cached in its own dir. Their progress goes to the terminal (stderr).
kueue: prereqs-devcluster
	hack/build-kueue.sh >/dev/null

kind: prereqs-devcluster
	hack/build-kind.sh >/dev/null

devcluster: prereqs-devcluster
	hack/devcluster up

devcluster-down:
	hack/devcluster down

## The main job: the seed's CNTK quickstart on a real node of the dev cluster, end to end (hack/demo.sh).
demo: prereqs-demo venv
	hack/demo.sh

## The same steps (hack/quickstart.sh): kubectl batchai, Azurite mounted with FUSE, the Azure Files double.
quickstart: prereqs-quickstart venv
	hack/quickstart.sh

## Regenerate crds/ (and the chart's templates/crds/) from the pydantic models in operator/batchai_operator/api.
crds: venv
	$(PY) -m batchai_operator.crdgen

## Benchmark (not a test): raw Jobs, TrainingJobs and Kubeflow training-operator PyTorchJobs side by side
## on the local control plane (bench/run.py), and the operator among finished jobs and across a restart.
## BENCH_SCENARIOS=burst,history,restart, BENCH_SIZES=500, BENCH_SYSTEMS=raw,operator, BENCH_HISTORY=10000,
## BENCH_PROFILE=py-spy.
bench: prereqs-bench venv
	$(PY) bench/run.py

## Chaos (not a test): 200 TrainingJobs while the operator is SIGKILLed every 5 s ten times and kube-apiserver
## and etcd are restarted once; CHAOS_JOBS and CHAOS_KILLS size it. Its last line sums it up.
## CHAOS_NODES=1 (real nodes: BATCHAI_REAL_NODES=2, under the real-nodes lock): 20 real jobs on the real nodes
## while the operator is SIGKILLed and a real node's kubelet and containerd are stopped and started again
## CHAOS_NODE_FAULTS (2) times; it also counts ran_twice (a job node's pods running at the same time).
chaos: prereqs-chaos venv
	$(PY) tests/chaos.py
