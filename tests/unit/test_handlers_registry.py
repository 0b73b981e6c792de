"""What the operator registers with kopf. Only event handlers and indexes: the operator decides from
the world as it is (level-based), never from kopf's diffs, so it can tell kopf to keep no diff base."""

from __future__ import annotations

import kopf

import batchai_operator.main  # noqa: F401  (registers the handlers on kopf's default registry)
from batchai_operator.reconcile.lifecycle import NoDiffBase, configure


def test_only_event_handlers_and_indexes_are_registered() -> None:
    registry = kopf.get_default_registry()
    # kopf's registries have no public listing; these are the ones its processing consults.
    assert not registry._changing.get_all_handlers(), "on.create/update/delete/field need a diff base"
    assert not registry._spawning.get_all_handlers(), "daemons and timers need a diff base"
    assert registry._watching.get_all_handlers() and registry._indexing.get_all_handlers()


def test_kopf_keeps_no_diff_base() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    body = kopf.Body({"metadata": {"name": "x"}, "spec": {"big": list(range(1000))}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
