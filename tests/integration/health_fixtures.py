"""Argo CD health fixtures from real objects (argocd/resource_customizations/batchai.io/<Kind>/testdata).

`record(kind, name, obj, ...)` normalises a live TrainingJob or BatchAICluster (names, uids, times and the
scheduler's node counts, which differ per run) and compares it with the committed fixture: a difference
means the operator now writes something else than the fixture the Lua check was tested on, and the test
fails. With BATCHAI_UPDATE_HEALTH_FIXTURES=1 it (re)writes the fixture instead. It also runs the Lua check
on the live object and asserts the health status health_test.yaml expects for that fixture.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from argocd_health import CUSTOMIZATIONS, cases, health

UPDATE = os.environ.get("BATCHAI_UPDATE_HEALTH_FIXTURES") == "1"
FIXTURE_NAMESPACE = "team-a"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_SCHEDULER = re.compile(r"\d+/\d+ nodes are available: [^\"]*")
_KEEP_META = ("name", "namespace", "generation", "labels")
# Error details whose values are generated per run (pod name suffixes, a hash over uid-bearing paths).
_RUN_DETAILS = {"podName": "<pod>", "setupTaskRevision": "<revision>"}


def normalize(obj: Mapping[str, Any], replacements: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The object with what differs between runs replaced by fixed values."""
    out = copy.deepcopy(dict(obj))
    meta = out["metadata"]
    namespace, uid = meta["namespace"], meta["uid"]
    out["metadata"] = {k: meta[k] for k in _KEEP_META if k in meta}
    text = json.dumps(out)
    for old, new in {**(replacements or {}), uid: "00000000-0000-4000-8000-000000000000"}.items():
        text = text.replace(old, new)
    text = text.replace(namespace, FIXTURE_NAMESPACE)
    text = _TIME.sub("2026-01-01T00:00:00Z", text)
    text = _SCHEDULER.sub("<N>/<M> nodes are available: <scheduler's reasons>", text)
    fixed = dict(json.loads(text))
    for error in (fixed.get("status") or {}).get("errors") or []:
        for detail in error.get("details") or []:
            if detail.get("name") in _RUN_DETAILS:
                detail["value"] = _RUN_DETAILS[detail["name"]]
    return fixed


def expected(kind: str, name: str) -> dict[str, str]:
    path = f"testdata/{name}.yaml"
    for case in cases(kind):
        if case["inputPath"] == path:
            return dict(case["healthStatus"])
    raise AssertionError(f"{kind}/health_test.yaml has no case for {path}")


def record(
    kind: str, name: str, obj: Mapping[str, Any], replacements: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Check (or with BATCHAI_UPDATE_HEALTH_FIXTURES=1 write) fixture `name` from the live `obj`;
    returns the Lua verdict on the live object after asserting its status."""
    fixture = normalize(obj, replacements)
    path = CUSTOMIZATIONS / kind / "testdata" / f"{name}.yaml"
    text = yaml.safe_dump(fixture, sort_keys=False)
    if UPDATE:
        path.write_text(text)
    else:
        assert path.exists(), f"{path} missing: run with BATCHAI_UPDATE_HEALTH_FIXTURES=1"
        committed = yaml.safe_load(path.read_text())
        diff = "".join(
            difflib.unified_diff(
                yaml.safe_dump(committed, sort_keys=False).splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"{path.name} (committed)",
                "live, normalised",
            )
        )
        assert fixture == committed, (
            f"{path.name} drifted from what the operator writes now; if intended, regenerate it with "
            f"BATCHAI_UPDATE_HEALTH_FIXTURES=1 and review the diff:\n{diff}"
        )
    verdict = health(kind, dict(obj))
    assert verdict["status"] == expected(kind, name)["status"], (verdict, dict(obj).get("status"))
    return verdict
