# batchai-operator: the commands a newcomer needs. `make demo` runs a Batch AI job end to end;
# `make test` runs everything CI runs.
PY ?= .venv/bin/python
PYTEST ?= .venv/bin/pytest

.PHONY: test lint unit integration devcluster devcluster-down crds demo quickstart bench venv

venv: .venv/.installed
# A stamp file, not .venv/bin/python: that is a symlink, and make would read the interpreter's mtime.
.venv/.installed: pyproject.toml
	[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch $@

## Everything: lint, type check, unit tests, integration tests against the local control plane.
test: venv lint
	$(PYTEST) tests -q

lint: venv
	.venv/bin/ruff check operator tests bench
	.venv/bin/mypy

unit: venv
	$(PYTEST) tests/unit -q

integration: venv
	$(PYTEST) tests/integration -q

devcluster:
	hack/devcluster up

devcluster-down:
	hack/devcluster down

## The main job: local control plane + operator + the seed's CNTK quickstart job, to completion.
demo: venv
	hack/demo.sh

## The seed quickstart's steps with kubectl batchai, against Azurite and the Azure Files double.
quickstart: venv
	hack/quickstart.sh

## Regenerate crds/ (and the chart's templates/crds/) from the pydantic models in operator/batchai_operator/api.
crds: venv
	$(PY) -m batchai_operator.crdgen

## Benchmarks (not tests): TrainingJobs through the operator vs the same raw Jobs, ratio printed.
bench: venv
	$(PY) bench/jobs_vs_raw.py
