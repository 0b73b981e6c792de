"""The default image per toolkit (jobs without containerSettings): one map in the operator, the chart and
docs/migration.md, each image stated with what it holds, and shown by `kubectl batchai job show`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from batchai_operator.api.toolkits import TOOLKIT_FIELDS
from batchai_operator.cli.views import image_view
from batchai_operator.config import DEFAULT_IMAGES, IMAGE_CONTENTS, OperatorConfig

REPO = Path(__file__).resolve().parents[2]


def test_the_chart_values_carry_the_operator_defaults() -> None:
    values = yaml.safe_load((REPO / "charts/batchai-operator/values.yaml").read_text())
    assert values["jobs"]["images"] == DEFAULT_IMAGES
    assert OperatorConfig.from_env({}).images == DEFAULT_IMAGES


def test_every_toolkit_has_a_default_image_and_every_default_says_what_it_holds() -> None:
    assert set(DEFAULT_IMAGES) == set(TOOLKIT_FIELDS.values())
    assert set(IMAGE_CONTENTS) == set(DEFAULT_IMAGES.values())


def test_migration_guide_lists_every_default_image_with_its_contents() -> None:
    guide = (REPO / "docs/migration.md").read_text()
    for tool, image in DEFAULT_IMAGES.items():
        row = f"| {tool} | `{image}` | {IMAGE_CONTENTS[image]} |"
        assert row in guide, f"docs/migration.md lacks the row: {row}"


def job(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "j", "namespace": "ns", "uid": "u"}, "spec": spec}


def batch_job(image: str) -> dict[str, Any]:
    containers = [{"name": "sidecar", "image": "other"}, {"name": "main", "image": image}]
    return {"spec": {"template": {"spec": {"containers": containers}}}}


CNTK = {"cntkSettings": {"pythonScriptFilePath": "train.py"}}


def test_job_show_names_the_image_its_job_runs_and_what_a_default_holds() -> None:
    image = DEFAULT_IMAGES["cntk"]
    assert image_view(job(CNTK), [batch_job(image)]) == {
        "image": image,
        "imageContents": IMAGE_CONTENTS[image],
    }
    # an image of the admin's (chart value) or the cluster's: named, contents unknown
    mine = "myacr.azurecr.io/cntk:1"
    assert image_view(job(CNTK), [batch_job(mine)]) == {"image": mine}


def test_before_the_job_exists_containersettings_or_the_chart_value_is_named() -> None:
    own = {**CNTK, "containerSettings": {"imageSourceRegistry": {"image": "me/cntk:2.7"}}}
    assert image_view(job(own), []) == {"image": "me/cntk:2.7"}
    shown = image_view(job(CNTK), [])
    assert shown["image"] is None and "jobs.images.cntk" in shown["imageContents"]
