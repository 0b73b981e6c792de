"""Run the Argo CD health checks (argocd/resource_customizations/batchai.io/<Kind>/health.lua) like Argo CD.

Argo CD (util/lua/lua.go, gopher-lua = Lua 5.1) runs an argocd-cm health script in a fresh state with
SkipOpenLibs and then opens only `package`, the base library, `table` and a "safe" `os` with `time` and
`date` (util/lua/oslib_safe.go); the live object is the global `obj` (JSON numbers become Lua numbers,
null becomes nil) and the chunk's return value is the health. `lupa.lua51` opens every standard library,
so the sandbox below removes what Argo CD does not open: `string` (including string methods such as
("x"):upper()), `math`, `io`, `debug`, `coroutine`, the full `os`, and lupa's own `python` module.
Not reproduced: Argo CD's 1 s execution timeout.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from lupa import lua51

REPO = Path(__file__).resolve().parents[1]
CUSTOMIZATIONS = REPO / "argocd" / "resource_customizations" / "batchai.io"
KINDS = ("TrainingJob", "BatchAICluster")
STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")

_SANDBOX = """
local safe_os = {time = os.time, date = os.date}
getmetatable("").__index = nil
string, math, io, debug, coroutine, python = nil, nil, nil, nil, nil, nil
for _, name in ipairs({"string", "math", "io", "debug", "coroutine", "os", "python"}) do
  package.loaded[name] = nil
end
os = safe_os
package.loaded.os = safe_os
"""


def script(kind: str) -> str:
    return (CUSTOMIZATIONS / kind / "health.lua").read_text()


def _to_lua(rt: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return rt.table_from({k: _to_lua(rt, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return rt.table_from([_to_lua(rt, v) for v in value])
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def health(kind: str, obj: dict[str, Any], source: str | None = None) -> dict[str, str]:
    """The {status, message} Argo CD would show for `obj` (a TrainingJob or BatchAICluster as JSON)."""
    rt = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    rt.execute(_SANDBOX)
    rt.globals().obj = _to_lua(rt, obj)
    result = rt.execute(source if source is not None else script(kind))
    if lua51.lua_type(result) != "table":
        raise TypeError(f"expect table output from Lua script, not {lua51.lua_type(result)}")
    out = {str(k): v for k, v in result.items()}
    if out.get("status") not in STATUSES:
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    return {"status": str(out["status"]), "message": str(out.get("message") or "")}


def cases(kind: str) -> list[dict[str, Any]]:
    """health_test.yaml of a kind, as Argo CD's own resource_customizations tests lay it out."""
    doc = yaml.safe_load((CUSTOMIZATIONS / kind / "health_test.yaml").read_text())
    return list(doc["tests"])


def fixture(kind: str, input_path: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CUSTOMIZATIONS / kind / input_path).read_text()))
