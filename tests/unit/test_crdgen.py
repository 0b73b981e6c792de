"""crdgen: pydantic -> structural CRDs, and the committed crds/ staying in step with the models."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, Field

from batchai_operator import crdgen
from batchai_operator.api.base import ApiModel, cel, rules
from batchai_operator.crdgen import KINDS, CrdGenError, crd, model_schema, render, render_chart

REPO = Path(__file__).resolve().parents[2]
CRDS = {info.kind: crd(info) for info in KINDS}

# Keys the apiserver refuses in a structural schema (or that only pydantic's JSON Schema dialect has).
FORBIDDEN = {
    "$ref",
    "$defs",
    "definitions",
    "$schema",
    "id",
    "title",
    "const",
    "nullable",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "discriminator",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "uniqueItems",
    "examples",
}


def schema(kind: str) -> dict[str, Any]:
    result: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below (and including) `node`, with a readable path."""
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}.*")


ALL_NODES = [(f"{kind}{path}", node) for kind in CRDS for path, node in nodes(schema(kind))]
SPEC_NODES = [(f"{kind}.spec{p}", n) for kind in CRDS for p, n in nodes(schema(kind)["properties"]["spec"])]
RULES = [(path, rule) for path, node in ALL_NODES for rule in node.get("x-kubernetes-validations", [])]


# ---- structural-schema rules ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_no_forbidden_keys(kind: str) -> None:
    for path, node in nodes(schema(kind)):
        bad = FORBIDDEN & set(node)
        assert not bad, f"{kind}{path}: {bad}"
        assert node.get("additionalProperties") is not False, f"{kind}{path}: additionalProperties: false"
        assert node.get("x-kubernetes-preserve-unknown-fields") is not False, path


def test_every_node_has_a_type() -> None:
    for path, node in ALL_NODES:
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert node.get("type") != "null", path


def test_one_of_properties_additional_properties_items() -> None:
    for path, node in ALL_NODES:
        assert len({"properties", "additionalProperties", "items"} & set(node)) <= 1, path


def test_every_field_has_a_description() -> None:
    for path, node in ALL_NODES:
        if path.endswith((".metadata", ".*")):  # map values are described by their map; metadata is built in
            continue
        assert node.get("description"), f"{path} has no description"


def test_exclusive_bounds_use_the_openapi_3_0_boolean_form() -> None:
    for path, node in ALL_NODES:
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            if key in node:
                assert node[key] is True, path


def test_patterns_are_re2() -> None:
    """The apiserver compiles patterns with Go's RE2: no lookaround, no backreferences."""
    patterns = [(path, node["pattern"]) for path, node in ALL_NODES if "pattern" in node]
    assert len(patterns) > 10
    for path, pattern in patterns:
        assert not re.search(r"\(\?[=!<]|\\[1-9]|\(\?P=", pattern), f"{path}: {pattern}"
        re.compile(pattern)
    for path, rule in RULES:
        assert "(?=" not in rule["rule"] and "(?!" not in rule["rule"], path


def test_strings_lists_and_maps_in_spec_are_bounded() -> None:
    """The apiserver costs CEL rules by the largest possible input: unbounded values make rules too
    expensive (the CRD is rejected), so every spec string, list and map has a maximum."""
    for path, node in SPEC_NODES:
        if node.get("type") == "string":
            assert "maxLength" in node or "enum" in node, f"{path}: no maxLength"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: no maxItems"
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, f"{path}: no maxProperties"


def test_optional_fields_are_not_nullable_and_have_no_null_default() -> None:
    cntk = schema("TrainingJob")["properties"]["spec"]["properties"]["cntkSettings"]
    script = cntk["properties"]["pythonScriptFilePath"]
    assert script["type"] == "string" and "default" not in script and "nullable" not in script
    assert "required" not in cntk
    for path, node in ALL_NODES:
        assert node.get("default", 0) is not None, path


def test_defaults_the_models_declare_are_kept() -> None:
    spec = schema("TrainingJob")["properties"]["spec"]
    assert spec["properties"]["schedulingPriority"]["default"] == "normal"
    assert spec["properties"]["experiment"]["default"] == "default"
    share = spec["properties"]["mountVolumes"]["properties"]["azureFileShares"]["items"]
    assert share["properties"]["fileMode"]["default"] == "0777"
    assert spec["properties"]["constraints"]["properties"]["maxWallClockTime"]["default"] == "7.00:00:00"
    cluster = schema("BatchAICluster")["properties"]["spec"]
    assert cluster["properties"]["vmPriority"]["default"] == "dedicated"
    manual = cluster["properties"]["scaleSettings"]["properties"]["manual"]["properties"]
    assert manual["targetNodeCount"]["default"] == 0
    assert manual["nodeDeallocationOption"]["default"] == "requeue"


def test_required_fields() -> None:
    spec = schema("TrainingJob")["properties"]["spec"]
    assert spec["required"] == ["cluster", "nodeCount", "stdOutErrPathPrefix"]
    assert schema("TrainingJob")["required"] == ["spec"]
    assert schema("BatchAICluster")["properties"]["spec"]["required"] == ["vmSize"]


def test_string_maps() -> None:
    selector = schema("BatchAICluster")["properties"]["spec"]["properties"]["nodeSelector"]
    assert selector["type"] == "object"
    assert selector["additionalProperties"] == {"type": "string", "maxLength": 63}


# ---- CEL rules --------------------------------------------------------------------------------------


def rules_at(kind: str, *path: str) -> list[str]:
    node = schema(kind)
    for name in path:
        node = node["items"] if name == "[]" else node["properties"][name]
    return [r["rule"] for r in node.get("x-kubernetes-validations", [])]


def messages() -> str:
    return "\n".join(r["message"] for _, r in RULES)


@pytest.mark.parametrize(
    "fragment",
    [
        "exactly one toolkit",
        "configFilePath is required when languageType is BrainScript",
        "both configFilePath and pythonScriptFilePath are set; set languageType",
        "workerCount must not exceed nodeCount x GPUs per VM",
        "exactly one of configFilePath or pythonScriptFilePath",
        "parameterServerCount must not exceed nodeCount",
        "outputDirectories: ids must be unique",
        "inputDirectories: ids must be unique",
        "relativeMountPath must not contain '..'",
        "relativeMountPath must not start with '/'",
        "relativeMountPath values must be unique",
        "inline storage keys are not accepted",
        "registry passwords are not accepted inline",
        "secret values are not accepted inline",
        "spec is immutable",
        "spec.terminate cannot be reverted",
        "scaleSettings: set exactly one of manual or autoScale",
        "minimumNodeCount must not exceed maximumNodeCount",
        "adminUserPassword: passwords are not accepted",
    ],
)
def test_rule_present(fragment: str) -> None:
    assert fragment in messages()


def test_trainingjob_names_are_constrained() -> None:
    name = schema("TrainingJob")["properties"]["metadata"]["properties"]["name"]
    assert name["maxLength"] == 52
    assert re.fullmatch(name["pattern"], "cntk-python-1")
    for bad in ("1job", "Job", "job-", "a_b", "a.b"):
        assert not re.fullmatch(name["pattern"], bad), bad
    # metadata may constrain nothing but name (and generateName)
    for kind in CRDS:
        assert set(schema(kind)["properties"]["metadata"].get("properties", {})) <= {"name", "generateName"}
    assert schema("BatchAICluster")["properties"]["metadata"]["properties"]["name"]["maxLength"] == 63


def test_rules_sit_where_declared() -> None:
    assert any("filter(x, x).size() == 1" in r for r in rules_at("TrainingJob", "spec"))
    assert rules_at("TrainingJob", "spec", "mountVolumes", "azureFileShares", "[]", "relativeMountPath") == [
        "!self.startsWith('/')",
        "!self.split('/').exists(p, p == '..')",
        "self.matches('^[^/\\\\x00-\\\\x1f\\\\x7f]+(/[^/\\\\x00-\\\\x1f\\\\x7f]+)*$')",
    ]
    creds = rules_at("TrainingJob", "spec", "mountVolumes", "azureBlobFileSystems", "[]", "credentials")
    assert "!has(self.accountKey)" in creds
    assert rules_at("TrainingJob", "spec", "cntkSettings")
    assert rules_at("BatchAICluster", "spec", "scaleSettings")
    assert rules_at("BatchAICluster", "spec", "nodeSetup", "mountVolumes")


def test_rules_are_well_formed() -> None:
    assert len(RULES) > 30
    reasons = {"FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"}
    for path, rule in RULES:
        assert set(rule) <= {"rule", "message", "messageExpression", "fieldPath", "reason"}, path
        assert next(iter(rule)) == "rule", path
        assert rule["message"], path
        assert rule.get("reason", "FieldValueInvalid") in reasons, path
        if "fieldPath" in rule:
            assert rule["fieldPath"].startswith("."), path


def test_no_secret_material_accepted_anywhere() -> None:
    """Every field that could hold a key or password is guarded by a rule rejecting it."""
    guarded = {"accountKey", "password", "value", "adminUserPassword", "instrumentationKey"}
    for path, node in ALL_NODES:
        props = node.get("properties") or {}
        for name in guarded & set(props):
            if name == "value" and "secretRef" not in props:
                continue  # environmentVariables[].value, tolerations[].value: not secrets
            assert any(r["rule"] == f"!has(self.{name})" for r in node.get("x-kubernetes-validations", [])), (
                f"{path}.{name} is not rejected"
            )


# ---- the CRD objects --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "plural", "short"),
    [("TrainingJob", "trainingjobs", "tj"), ("BatchAICluster", "batchaiclusters", "bac")],
)
def test_crd_metadata(kind: str, plural: str, short: str) -> None:
    obj = CRDS[kind]
    assert obj["apiVersion"] == "apiextensions.k8s.io/v1"
    assert obj["metadata"]["name"] == f"{plural}.batchai.io"
    spec = obj["spec"]
    assert spec["group"] == "batchai.io" and spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == [short]
    assert spec["names"]["categories"] == ["batchai"]
    assert spec["names"]["kind"] == kind and spec["names"]["plural"] == plural
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def columns(kind: str) -> list[tuple[str, str]]:
    cols = CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]
    return [(c["name"], c["jsonPath"]) for c in cols if not c.get("priority")]


def test_trainingjob_printer_columns() -> None:
    assert columns("TrainingJob") == [
        ("State", ".status.executionState"),
        ("Exit Code", ".status.executionInfo.exitCode"),
        ("Tool", ".status.toolType"),
        ("Nodes", ".status.nodesSummary"),
        ("Cluster", ".spec.cluster"),
        ("Age", ".metadata.creationTimestamp"),
    ]


def test_cluster_printer_columns() -> None:
    assert columns("BatchAICluster") == [
        ("VM Size", ".spec.vmSize"),
        ("State", ".status.allocationState"),
        ("Idle", ".status.nodeStateCounts.idleNodeCount"),
        ("Running", ".status.nodeStateCounts.runningNodeCount"),
        ("Preparing", ".status.nodeStateCounts.preparingNodeCount"),
        ("Leaving", ".status.nodeStateCounts.leavingNodeCount"),
        ("Unusable", ".status.nodeStateCounts.unusableNodeCount"),
        ("Age", ".metadata.creationTimestamp"),
    ]


def test_printer_columns_point_at_schema_fields() -> None:
    for kind in CRDS:
        for col in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]:
            if col["jsonPath"].startswith(".metadata"):
                continue
            node = schema(kind)
            for part in col["jsonPath"].strip(".").split("."):
                node = node["properties"][part]
            expected = {"string": "string", "integer": "integer"}[node["type"]]
            assert col["type"] == expected, col


# ---- the rewriter on constructs the models do not (yet) use ------------------------------------------


class _Inner(ApiModel):
    """Inner docstring."""

    a: int = Field(description="A.")


class _Sample(ApiModel):
    """Sample model."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(cel("self.n > 0", "n must be positive"))
    }

    n: int = Field(gt=0, lt=10, description="Exclusive bounds.")
    fixed: Literal["x"] = Field(default="x", description="A const.")
    quantity: int | str | None = Field(default=None, description="int or string.")
    anything: Any = Field(default=None, description="Anything.")
    inner: _Inner | None = Field(
        default=None,
        description="Field description wins.",
        json_schema_extra=rules(cel("self.a < 5", "small")),
    )
    tags: set[str] = Field(default_factory=set, description="A set.")
    labels: dict[str, str] | None = Field(default=None, description="A map.")


def test_rewriter_on_sample() -> None:
    out = model_schema(_Sample, "sample")
    props = out["properties"]
    assert props["n"] == {
        "description": "Exclusive bounds.",
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 10,
        "exclusiveMaximum": True,
    }
    assert props["fixed"]["enum"] == ["x"] and props["fixed"]["type"] == "string"
    assert props["quantity"] == {"description": "int or string.", "x-kubernetes-int-or-string": True}
    assert props["anything"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["anything"]["type"] == "object"
    assert props["inner"]["description"] == "Field description wins."
    assert props["inner"]["x-kubernetes-validations"] == [{"rule": "self.a < 5", "message": "small"}]
    assert props["inner"]["required"] == ["a"]
    assert "uniqueItems" not in props["tags"]
    assert props["labels"]["additionalProperties"] == {"type": "string"}
    assert out["x-kubernetes-validations"] == [{"rule": "self.n > 0", "message": "n must be positive"}]
    assert "additionalProperties" not in out and "title" not in out


class _Union(BaseModel):
    v: int | list[int] = Field(description="Not structural.")


class _Undescribed(BaseModel):
    v: int


def test_rewriter_refuses_what_it_cannot_express() -> None:
    with pytest.raises(CrdGenError, match="unions"):
        model_schema(_Union, "u")
    with pytest.raises(CrdGenError, match="description"):
        model_schema(_Undescribed, "u")


# ---- drift, chart, CLI ------------------------------------------------------------------------------


def test_committed_crds_match_the_models() -> None:
    for name, text in render().items():
        path = REPO / "crds" / name
        assert path.is_file(), f"{path} missing: run `make crds`"
        assert path.read_text() == text, f"{path} is out of date with the models: run `make crds`"
    assert sorted(p.name for p in (REPO / "crds").glob("*.yaml")) == sorted(render())


def test_committed_chart_crds_match_the_models() -> None:
    chart = REPO / "charts" / "batchai-operator"
    if not chart.is_dir():
        pytest.skip("no Helm chart yet")
    for name, text in render_chart().items():
        path = chart / "templates" / "crds" / name
        assert path.is_file() and path.read_text() == text, f"{path} is out of date: run `make crds`"


def test_generated_yaml_parses_back_to_the_crd() -> None:
    for info in KINDS:
        assert yaml.safe_load(render()[info.file_name]) == crd(info)


def test_chart_template_wraps_the_same_crd() -> None:
    for info in KINDS:
        text = render_chart()[info.file_name]
        lines = text.splitlines()
        assert lines[1] == "{{- if .Values.crds.enabled }}" and lines[-1] == "{{- end }}"
        assert "helm.sh/resource-policy: keep" in text and "{{- if .Values.crds.keep }}" in text
        # Render both ways by hand: the template is the CRD plus the optional annotation.
        enabled = "\n".join(line for line in lines if not line.strip().startswith("{{"))
        rendered = yaml.safe_load(enabled)
        assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        del rendered["metadata"]["annotations"]
        assert rendered == crd(info)


def test_main_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "crds"
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    assert crdgen.main(["--check", "--out", str(out), "--chart", str(chart)]) == 1
    assert "make crds" in capsys.readouterr().err
    assert crdgen.main(["--out", str(out), "--chart", str(chart)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(render())
    assert sorted(p.name for p in (chart / "templates" / "crds").iterdir()) == sorted(render_chart())
    assert crdgen.main(["--check", "--out", str(out), "--chart", str(chart)]) == 0
    assert crdgen.main(["--out", str(out), "--chart", str(tmp_path / "no-chart")]) == 0


def test_repo_is_up_to_date() -> None:
    assert (
        crdgen.main(
            ["--check", "--out", str(REPO / "crds"), "--chart", str(REPO / "charts/batchai-operator")]
        )
        == 0
    )
