"""Hostile and malformed job.json files for `kubectl-batchai job convert`: each gets one clear error line
(exit code 1), quickly, without a traceback and without echoing a line that may hold a storage key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from batchai_operator.cli.main import main

KEY = "c3VwZXItc2VjcmV0LXN0b3JhZ2Uta2V5PT0="
SEED = Path(__file__).resolve().parents[2] / "examples" / "cntk-mnist" / "job.json"


def convert(tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "job.json"
    path.write_bytes(data)
    started = time.monotonic()
    code = main(
        ["job", "convert", "-f", str(path), "-c", "nc6", "--placeholder", "YOUR_STORAGE_ACCOUNT=acct"]
    )
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _billion_laughs() -> bytes:
    """Ten levels of ten aliases each: 10^10 nodes once expanded."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(9):
        prev, name = chr(97 + i), chr(98 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join([*lines, "properties: *j"]).encode()


BILLION_LAUGHS = _billion_laughs()

HOSTILE: list[tuple[str, bytes, str]] = [
    ("json-nested-100k", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("json-object-nested-100k", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
    ("yaml-nested-100k", b"a: " + b"[" * 100_000, "nested too deeply"),
    ("yaml-billion-laughs", BILLION_LAUGHS, "aliases"),
    ("huge-file", b'{"properties": {"x": "' + b"a" * 5_000_000 + b'"}}', "at most 1024 KiB"),
    ("latin-1", '{"properties": {"nodeCount": 1, "x": "caf\xe9"}}'.encode("latin-1"), "not UTF-8 or UTF-16"),
    ("binary", bytes(range(256)) * 8, "not UTF-8 or UTF-16"),
    ("not-an-object", b"[1, 2, 3]", "must be a JSON object"),
    ("empty", b"", "must be a JSON object"),
]


@pytest.mark.parametrize(("case", "data", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_job_files_get_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, data: bytes, message: str
) -> None:
    code, err = convert(tmp_path, data, capsys)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1


def test_malformed_near_an_account_key_does_not_echo_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#49: the parse error must not print the line it failed on: it holds the key."""
    text = SEED.read_text().replace(
        '"containerName": "data",',
        f'"containerName": "data",\n "credentials": {{"accountKey": "{KEY}" oops}},',
        1,
    )
    assert KEY in text
    code, err = convert(tmp_path, text.encode(), capsys)
    assert code == 1 and KEY not in err and "line" in err


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_job_files_saved_by_windows_editors_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    doc = json.loads(SEED.read_text())
    code, _ = convert(tmp_path, json.dumps(doc).encode(encoding), capsys)
    assert (code == 0 and "kind: TrainingJob" in capsys.readouterr().out) or code == 0


def test_a_variable_batchai_sets_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 28: a job.json's own AZ_BATCHAI_OUTPUT_MODEL gets the apiserver's error, before any apply."""
    doc = json.loads(SEED.read_text())
    doc["properties"]["environmentVariables"] = [{"name": "AZ_BATCHAI_OUTPUT_MODEL", "value": "/x"}]
    code, err = convert(tmp_path, json.dumps(doc).encode(), capsys)
    assert code == 1, err
    assert "spec.environmentVariables.0.name" in err
    assert "AZ_BATCHAI_OUTPUT_MODEL: environment variable names starting with AZ_BATCHAI_" in err
