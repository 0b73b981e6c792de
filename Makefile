# batchai-operator: the commands a newcomer needs. `make demo` runs a Batch AI job end to end;
# `make test` runs everything CI runs.
PY ?= .venv/bin/python
PYTEST ?= .venv/bin/pytest

.PHONY: test lint unit integration e2e devcluster devcluster-down crds demo bench venv

venv: .venv/.installed
# A stamp file, not .venv/bin/python: that is a symlink, and make would read the interpreter's mtime.
.venv/.installed: pyproject.toml
	[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch $@

## Everything: lint, type check, unit tests, end-to-end tests on the dev cluster's real nodes,
## integration tests against the local control plane. The cluster comes up first (the first time, that
## builds the toolchain and the images), outside the tests' time limits.
test: venv lint
	hack/devcluster up
	$(PYTEST) tests -q

lint: venv
	.venv/bin/ruff check operator tests bench
	.venv/bin/mypy

unit: venv
	$(PYTEST) tests/unit -q

integration: venv
	hack/devcluster up
	$(PYTEST) tests/integration -q

e2e: venv
	hack/devcluster up
	$(PYTEST) tests/e2e -q

devcluster:
	hack/devcluster up

devcluster-down:
	hack/devcluster down

## The main job: local control plane + operator + the seed's CNTK quickstart job, to completion.
demo: venv
	hack/demo.sh

## Regenerate crds/ (and the chart's templates/crds/) from the pydantic models in operator/batchai_operator/api.
crds: venv
	$(PY) -m batchai_operator.crdgen

## Benchmarks (not tests): TrainingJobs through the operator vs the same raw Jobs, ratio printed.
bench: venv
	$(PY) bench/jobs_vs_raw.py
