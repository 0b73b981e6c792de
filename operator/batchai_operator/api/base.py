"""Shared pydantic base and helpers for the API models.

The models are the single source of truth: `crdgen` turns them into CRD schemas, the operator parses
custom resources with them, and the CLI parses Batch AI job.json files with them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

# Key under which a model or field carries CEL rules in its JSON schema; crdgen turns it into
# `x-kubernetes-validations`.
CEL_KEY = "x-kubernetes-validations"


def cel(
    rule: str,
    message: str,
    field_path: str | None = None,
    reason: str | None = None,
    message_expression: str | None = None,
) -> dict[str, str]:
    """One CEL validation rule as the apiserver expects it (`message_expression`, a CEL string expression,
    says what was wrong with the value itself; `message` stays as the fallback)."""
    out = {"rule": rule, "message": message}
    if message_expression:
        out["messageExpression"] = message_expression
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def rules(*items: dict[str, str]) -> dict[str, Any]:
    """json_schema_extra for a model or field carrying CEL rules."""
    return {CEL_KEY: list(items)}


class ApiModel(BaseModel):
    """camelCase on the wire (as Batch AI's JSON), snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as it appears in Kubernetes: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(ApiModel):
    """Status objects: unknown fields from newer operator versions are ignored, not rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", use_enum_values=True
    )
