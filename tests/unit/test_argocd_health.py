"""The Argo CD health checks (argocd/resource_customizations/batchai.io/<Kind>/health.lua), run in Lua 5.1
with only the libraries Argo CD opens (tests/argocd_health.py), on fixtures taken from real objects
(tests/integration/test_health_fixtures.py and test_kueue.py keep them in step with the operator)."""

from __future__ import annotations

from typing import Any

import pytest

from argocd_health import CUSTOMIZATIONS, KINDS, cases, fixture, health

ALL_CASES = [(kind, case) for kind in KINDS for case in cases(kind)]


@pytest.mark.parametrize(
    ("kind", "case"), ALL_CASES, ids=[f"{k}/{c['inputPath'].rsplit('/', 1)[-1]}" for k, c in ALL_CASES]
)
def test_health_of_each_fixture(kind: str, case: dict[str, Any]) -> None:
    assert health(kind, fixture(kind, case["inputPath"])) == case["healthStatus"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_fixture_has_a_case_and_every_status_is_covered(kind: str) -> None:
    listed = {c["inputPath"] for c in cases(kind)}
    on_disk = {f"testdata/{p.name}" for p in (CUSTOMIZATIONS / kind / "testdata").glob("*.yaml")}
    assert listed == on_disk
    statuses = {c["healthStatus"]["status"] for c in cases(kind)}
    wanted = {"Healthy", "Progressing", "Degraded"} | ({"Suspended"} if kind == "TrainingJob" else set())
    assert statuses == wanted


def test_sandbox_has_no_string_or_math_library_as_in_argo_cd() -> None:
    obj: dict[str, Any] = {"metadata": {}}
    for source in ('return {status = string.upper("x")}', 'return {status = ("x"):upper()}'):
        with pytest.raises(Exception, match="attempt to index"):
            health("TrainingJob", obj, source)
    probe = 'return {status = "Healthy", message = type(math) .. type(io) .. type(os.exit) .. type(os.time)}'
    assert health("TrainingJob", obj, probe)["message"] == "nilnilnilfunction"


def test_an_unknown_status_becomes_unknown_as_in_argo_cd() -> None:
    assert health("TrainingJob", {"metadata": {}}, 'return {status = "Fine"}') == {
        "status": "Unknown",
        "message": "Lua returned an invalid health status",
    }


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        # The operator's InvalidSpec path writes no conditions and no observedGeneration.
        (
            {
                "executionState": "failed",
                "executionInfo": {"errors": [{"code": "InvalidSpec", "message": "bad"}]},
            },
            {"status": "Degraded", "message": "InvalidSpec: bad"},
        ),
        ({"executionState": "succeeded"}, {"status": "Healthy", "message": "The job completed successfully"}),
        (
            {"executionState": "running", "observedGeneration": 3},
            {"status": "Progressing", "message": "running"},
        ),
    ],
)
def test_trainingjob_without_conditions(status: dict[str, Any], verdict: dict[str, str]) -> None:
    assert health("TrainingJob", {"metadata": {"generation": 3}, "status": status}) == verdict
