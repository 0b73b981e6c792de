"""Everything the operator creates for one TrainingJob, from the one-per-child builders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import toolkit_facts
from ..api.cluster import BatchAIClusterSpec
from ..api.cluster_checks import check_against_cluster
from ..api.trainingjob import TrainingJobSpec
from ..config import OperatorConfig
from ..decide.gang import Mechanism
from ..launcher import commands
from ..names import LABEL_CLUSTER, TRAININGJOB_KIND
from .batch_job import build_batch_job
from .configmap import build_config_map, build_launcher_config_map
from .context import TrainingJobContext, hosts
from .errors import BuildError
from .gang import build_pod_group, build_workload
from .limits import check_config_estimate, check_config_size
from .naming import child_labels, child_name, label_value, owner_reference, user_labels
from .paths import identity
from .placement import gpus_per_node
from .service import build_service
from .shared_temp import build_shared_temp_claim
from .ssh import build_ssh_secret


@dataclass(frozen=True)
class TrainingJobChildren:
    """The children of one TrainingJob.

    The SSH Secret is described by its metadata only: its keys are generated when it is created, so that
    building stays pure.
    """

    batch_job: dict[str, Any]
    config_map: dict[str, Any] | None  # a multi-node job's own (single-node jobs share the launcher's)
    service: dict[str, Any] | None
    ssh_secret_metadata: dict[str, Any] | None
    shared_temp_claim: dict[str, Any] | None = None  # multi-node jobs: the volume of their shared temp
    launcher_config_map: dict[str, Any] | None = None  # single-node jobs: the namespace's shared one
    workload: dict[str, Any] | None = None  # gang: workload (decide/gang.py): its Workload and PodGroup
    pod_group: dict[str, Any] | None = None

    def owned(self, keypair: Callable[[], tuple[str, str]]) -> list[dict[str, Any]]:
        """The children the TrainingJob owns, in creation order, the batch Job last (its pods mount the
        others). `keypair` makes the SSH Secret's (private, public) keys, when the job has one."""
        out = [m for m in (self.config_map, self.shared_temp_claim, self.workload, self.pod_group) if m]
        if self.ssh_secret_metadata is not None:
            out.append(build_ssh_secret(dict(self.ssh_secret_metadata), *keypair()))
        if self.service is not None:
            out.append(self.service)
        return [*out, self.batch_job]


def build_children(
    obj: Mapping[str, Any],
    spec: TrainingJobSpec,
    cluster_name: str,
    cluster: BatchAIClusterSpec,
    config: OperatorConfig,
    cluster_uid: str | None = None,
    gang: Mechanism | None = None,
) -> TrainingJobChildren:
    """The manifests for a TrainingJob object (as read from the API) on a given cluster.

    Raises BuildError when the spec cannot run here (unknown VM size, refused mounts, bad shmSize).
    """
    meta = obj["metadata"]
    child = child_name(meta["name"])
    labels = {**user_labels(meta.get("labels")), **child_labels(meta["name"], meta["uid"], spec.experiment)}
    labels[LABEL_CLUSTER] = label_value(cluster_name)
    ctx = TrainingJobContext(
        obj=obj,
        spec=spec,
        ident=identity(obj, spec),
        cluster_name=cluster_name,
        cluster=cluster,
        cluster_uid=cluster_uid,
        config=config,
        child=child,
        labels=labels,
        owner=owner_reference(obj, TRAININGJOB_KIND),
        gpus=gpus_per_node(cluster),
        hosts=hosts(child, spec.node_count),
        gang=gang,
    )
    misfit = check_against_cluster(spec, ctx.gpus)  # Batch AI's checks that need the cluster's GPUs
    if misfit is not None:
        raise BuildError(*misfit)
    check_config_estimate(spec, ctx.hosts)  # before rendering: a job too large costs no time here
    config_map = build_config_map(ctx) if ctx.multi_node else None
    check_config_size(config_map["data"] if config_map else commands.render_config(spec, ctx.hosts, ctx.gpus))
    batch_job = build_batch_job(ctx)
    priority_class = batch_job["spec"]["template"]["spec"].get("priorityClassName")
    workload = pod_group = None
    if gang is Mechanism.WORKLOAD:
        workload = build_workload(ctx.metadata(), spec.node_count, priority_class)
        pod_group = build_pod_group(ctx.metadata(), spec.node_count, priority_class)
    return TrainingJobChildren(
        batch_job=batch_job,
        config_map=config_map,
        service=build_service(ctx) if ctx.multi_node else None,
        ssh_secret_metadata=ctx.metadata(ctx.ssh_secret_name) if toolkit_facts.needs_ssh(ctx.spec) else None,
        shared_temp_claim=build_shared_temp_claim(ctx),
        launcher_config_map=None if ctx.multi_node else build_launcher_config_map(ctx.namespace),
        workload=workload,
        pod_group=pod_group,
    )
