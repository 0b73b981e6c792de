"""Container environment entries for a job's or setup task's own variables and secrets."""

from __future__ import annotations

from typing import Any

from ..api.common import EnvironmentVariable, EnvironmentVariableWithSecretValue


def user_env(
    variables: list[EnvironmentVariable] | None, secrets: list[EnvironmentVariableWithSecretValue] | None
) -> list[dict[str, Any]]:
    """environmentVariables as values, secrets as secretKeyRefs (the key defaults to the variable name)."""
    env = [v.wire() for v in variables or []]
    for s in secrets or []:
        assert s.secret_ref is not None  # the schema requires it
        ref = {"name": s.secret_ref.name, "key": s.secret_ref.key or s.name}
        env.append({"name": s.name, "valueFrom": {"secretKeyRef": ref}})
    return env
