# batchai-operator: the commands a newcomer needs. `make demo` runs a Batch AI job end to end;
# `make test` runs everything CI runs.
PY ?= .venv/bin/python
PYTEST ?= .venv/bin/pytest

.PHONY: test lint unit integration e2e devcluster devcluster-down crds demo quickstart bench chaos venv kueue kind

venv: .venv/.installed
# A stamp file, not .venv/bin/python: that is a symlink, and make would read the interpreter's mtime.
.venv/.installed: pyproject.toml
	[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch $@

## Everything: lint (ruff, mypy, hadolint), unit tests, end-to-end tests on the dev cluster's real nodes,
## integration tests against the local control plane. The cluster comes up first (the first time, that
## builds the toolchain and the images), outside the tests' time limits.
test: venv lint kueue kind
	hack/devcluster up
	$(PYTEST) tests -q

lint: venv
	.venv/bin/ruff check operator tests bench
	.venv/bin/mypy
	.venv/bin/hadolint Dockerfile

unit: venv kind
	$(PYTEST) tests/unit -q

integration: venv kueue
	hack/devcluster up
	$(PYTEST) tests/integration -q

e2e: venv
	hack/devcluster up
	$(PYTEST) tests/e2e -q

## Kueue (tests/integration/test_kueue.py) and kind (tests/unit/test_kind_config.py), pinned in
## hack/versions.env, each cached in its own dir (cold: Kueue ~4-10 min, kind ~20 s).
kueue:
	hack/build-kueue.sh >/dev/null

kind:
	hack/build-kind.sh >/dev/null

devcluster:
	hack/devcluster up

devcluster-down:
	hack/devcluster down

## The main job: the seed's CNTK quickstart on a real node of the dev cluster, end to end (hack/quickstart.sh).
demo: venv
	hack/demo.sh

## The same steps (hack/quickstart.sh): kubectl batchai, Azurite mounted with FUSE, the Azure Files double.
quickstart: venv
	hack/quickstart.sh

## Regenerate crds/ (and the chart's templates/crds/) from the pydantic models in operator/batchai_operator/api.
crds: venv
	$(PY) -m batchai_operator.crdgen

## Benchmark (not a test): raw Jobs, TrainingJobs and Kubeflow training-operator PyTorchJobs side by side
## on the local control plane (bench/run.py), and the operator among finished jobs and across a restart.
## BENCH_SCENARIOS=burst,history,restart, BENCH_SIZES=500, BENCH_SYSTEMS=raw,operator, BENCH_HISTORY=10000,
## BENCH_PROFILE=py-spy.
bench: venv
	$(PY) bench/run.py

## Chaos (not a test): 200 TrainingJobs while the operator is SIGKILLed every 5 s ten times and kube-apiserver
## and etcd are restarted once; CHAOS_JOBS and CHAOS_KILLS size it. Its last line sums it up.
chaos: venv
	$(PY) tests/chaos.py
