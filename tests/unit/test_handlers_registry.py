"""What the operator registers with kopf. Only event handlers and indexes: the operator decides from
the world as it is (level-based), never from kopf's diffs, so it can tell kopf to keep no diff base."""

from __future__ import annotations

import inspect

import kopf
import pytest

import batchai_operator.main  # noqa: F401  (registers the handlers on kopf's default registry)
from batchai_operator.handlers.indexes import SETUP_OBJECTS
from batchai_operator.names import LABEL_MANAGED_BY, LABEL_TRAININGJOB_UID, MANAGED_BY
from batchai_operator.observe import indexes as idx
from batchai_operator.reconcile.lifecycle import SETUP_SELECTOR, NoDiffBase, configure


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


def test_kopf_sees_no_trainingjob_job_pod_or_batch_job() -> None:
    """kopf's own cost per watch event was more than the operator's syncs (make bench): the TrainingJobs,
    job pods and batch Jobs are the operator's own watches' (reconcile/own_watches.py), so kopf watches
    neither TrainingJobs nor batch Jobs, and lists no job pod (its pod watch selects setup pods only)."""
    registry = kopf.get_default_registry()
    handlers = [*registry._indexing.get_all_handlers(), *registry._watching.get_all_handlers()]
    assert not [h for h in handlers if h.selector.any_name in ("jobs", "trainingjobs")]
    assert {h.labels == SETUP_OBJECTS for h in handlers if h.selector.any_name == "pods"} == {True}
    settings = kopf.OperatorSettings()
    configure(settings)
    pods = kopf.Resource("", "v1", "pods")
    assert settings.watching.label_selectors.collect(pods) == [SETUP_SELECTOR]
    assert all(f"{k}={v}" in SETUP_SELECTOR for k, v in SETUP_OBJECTS.items())


def test_every_handler_and_indexer_runs_in_the_event_loop() -> None:
    """kopf runs a sync function in a thread of its executor, a hop per watch event (about a tenth of the
    operator's CPU in make bench's profile); all of the operator's are coroutines, which kopf awaits."""
    registry = kopf.get_default_registry()
    handlers = [*registry._indexing.get_all_handlers(), *registry._watching.get_all_handlers()]
    handlers += [h for h in registry._activities.get_all_handlers() if h.fn.__module__.startswith("batchai")]
    sync = [h.id for h in handlers if not inspect.iscoroutinefunction(h.fn)]
    assert handlers and sync == []


def test_the_lookups_of_one_kopf_index_by_their_own_names() -> None:
    pod = {
        "metadata": {
            "name": "j-0-x",
            "namespace": "ns",
            "uid": "p1",
            "labels": {LABEL_TRAININGJOB_UID: "tj1"},
            "ownerReferences": [{"kind": "Job", "uid": "job1", "controller": True}],
        },
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }
    store = {k: [v] for k, v in idx.trainingjob_pods(pod).items()}
    indexes = idx.Indexes({idx.TRAININGJOB_PODS: store})
    (view,) = indexes.all(idx.PODS_BY_OWNER, ("ns", "tj1"))
    assert view["metadata"]["controllerUid"] == "job1"
    assert indexes.first(idx.POD_OWNER_BY_NAME, ("ns", "j-0-x")) == ("tj1", view)  # the same view
    assert indexes.first(idx.PODS_BY_NODE, "n1")["name"] == "j-0-x"
    assert indexes.items(idx.PODS_BY_NODE) == [("n1", store[(idx.PODS_BY_NODE, "n1")])]
    assert idx.trainingjob_pods({"metadata": {"name": "other", "labels": {}}}) == {}
    with pytest.raises(KeyError, match="items"):
        indexes[idx.PODS_BY_OWNER]


def test_kopfs_pods_and_daemonsets_are_filtered_by_the_apiserver_to_the_setup_objects() -> None:
    """Every kopf handler and index of these kinds requires the setup objects' labels; kopf's watches ask
    the apiserver for those only, and the first lists come in pages."""
    settings = kopf.OperatorSettings()
    configure(settings)
    registry = kopf.get_default_registry()
    for handler in [*registry._indexing.get_all_handlers(), *registry._watching.get_all_handlers()]:
        if handler.selector.any_name in ("pods", "jobs", "daemonsets"):
            assert handler.labels is not None and handler.labels[LABEL_MANAGED_BY] == MANAGED_BY
            resource = kopf.Resource(
                handler.selector.group or "", handler.selector.version or "v1", handler.selector.any_name
            )
            assert settings.watching.label_selectors.collect(resource) == [SETUP_SELECTOR]
    assert settings.watching.chunk_size == 500
