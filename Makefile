# batchai-operator: the commands a newcomer needs. `make demo` runs a Batch AI job end to end;
# `make test` runs everything CI runs.
PY ?= .venv/bin/python
PYTEST ?= .venv/bin/pytest

.PHONY: test lint unit integration devcluster devcluster-down crds demo bench venv

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

## Regenerate crds/ (and the chart's templates/crds/) from the pydantic models in operator/batchai_operator/api.
crds: venv
	$(PY) -m batchai_operator.crdgen

## Benchmark (not a test): raw Jobs, TrainingJobs and Kubeflow training-operator PyTorchJobs side by side
## on the local control plane (bench/run.py). BENCH_SIZES=500, BENCH_SYSTEMS=raw,operator, BENCH_PROFILE=py-spy.
bench: venv
	@if [ "$$BENCH_PROFILE" = py-spy ]; then .venv/bin/pip install -q 'py-spy>=0.4,<1'; fi
	$(PY) bench/run.py
