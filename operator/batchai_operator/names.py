"""Every name the operator shares with the outside world, in one place: the API group and kinds, the
labels and annotations it writes or reads, kopf's storage prefix, container and volume names, condition
types, and the reason and error codes that appear in status and Events.

Nothing here is configurable (see config.py for what is); changing a value here changes the wire contract.
"""

from __future__ import annotations

# ---- API ------------------------------------------------------------------------------------------
GROUP = "batchai.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
TRAININGJOB_KIND = "TrainingJob"
TRAININGJOB_PLURAL = "trainingjobs"
CLUSTER_KIND = "BatchAICluster"
CLUSTER_PLURAL = "batchaiclusters"

# ---- kopf's own bookkeeping (its finalizer and progress annotations) under our domain; no diff base --
DOMAIN = GROUP
FINALIZER = f"{DOMAIN}/finalizer"

# ---- labels the operator puts on its children and watches them by ----------------------------------
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "batchai-operator"
LABEL_TRAININGJOB = f"{DOMAIN}/trainingjob"
LABEL_TRAININGJOB_UID = f"{DOMAIN}/trainingjob-uid"
LABEL_EXPERIMENT = f"{DOMAIN}/experiment"
LABEL_CLUSTER = f"{DOMAIN}/cluster"
LABEL_ROLE = f"{DOMAIN}/role"
# Setup-task pods: which cluster they belong to, the pod template's hash (tells pods of the current setup
# task from old ones), and (set by the operator once the task exited 0) that the node is ready for jobs.
LABEL_CLUSTER_UID = f"{DOMAIN}/cluster-uid"
LABEL_SETUP_REVISION = f"{DOMAIN}/setup-task-revision"
LABEL_SETUP_STATE = f"{DOMAIN}/setup-task-state"
SETUP_ROLE = "setup-task"
SETUP_SUCCEEDED = "succeeded"

# Secrets `kubectl batchai job create` makes for a job.json's keys: made by the CLI, for which job.
MANAGED_BY_CLI = "kubectl-batchai"
LABEL_SECRET_OF_JOB = f"{DOMAIN}/job"
# Keys of a storage Secret, as the Azure Files and Blob CSI drivers read them.
SECRET_ACCOUNT_NAME = "azurestorageaccountname"
SECRET_ACCOUNT_KEY = "azurestorageaccountkey"
# az batchai's storage account and key variables; job.json's <AZURE_BATCHAI_STORAGE_ACCOUNT> and
# <AZURE_BATCHAI_STORAGE_KEY> placeholders are spelled the same.
ENV_STORAGE_ACCOUNT = "AZURE_BATCHAI_STORAGE_ACCOUNT"
ENV_STORAGE_KEY = "AZURE_BATCHAI_STORAGE_KEY"
# Workspaces (namespaces) and experiments (ConfigMaps) that `kubectl batchai` created carry
# LABEL_MANAGED_BY=MANAGED_BY_CLI; an experiment's ConfigMap also carries LABEL_EXPERIMENT.

# ---- annotations ------------------------------------------------------------------------------------
# On a Job: the hash of the spec it was built from, so a later spec change can be reported as not applied.
ANNOTATION_SPEC_HASH = f"{DOMAIN}/spec-hash"
# On a setup DaemonSet: the revision of its pod template.
ANNOTATION_SETUP_REVISION = LABEL_SETUP_REVISION
# On a BatchAICluster: the scaleSettings last applied to its AKS agent pool.
ANNOTATION_APPLIED_SCALE = f"{DOMAIN}/applied-scale-settings"
# On a TrainingJob, BatchAICluster or workspace namespace that kubectl batchai created: the Batch AI name
# the user gave (e.g. cntk_python_1), which may not be a Kubernetes name; the CLI resolves names through it.
ANNOTATION_BATCHAI_NAME = f"{DOMAIN}/name"
# On a workspace namespace: az's -g/--resource-group and -l/--location at `workspace create`.
ANNOTATION_RESOURCE_GROUP = f"{DOMAIN}/resource-group"
ANNOTATION_LOCATION = f"{DOMAIN}/location"
# Labels of a TrainingJob that its children do not get: the operator's own bookkeeping (a label copied
# from a TrainingJob must never make a pod look like a setup-task pod or another job's child).
RESERVED_LABEL_PREFIXES = (f"{DOMAIN}/",)
RESERVED_LABELS = (LABEL_MANAGED_BY,)
# Annotation prefixes that stay on a TrainingJob or BatchAICluster and are not copied onto its pods.
NOT_FOR_PODS = ("kubectl.kubernetes.io/", f"{DOMAIN}/", "kopf.zalando.org/", "argocd.argoproj.io/")

# ---- labels and taints of other components the operator reads or sets ------------------------------
LABEL_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
LABEL_AGENT_POOL = "kubernetes.azure.com/agentpool"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_SCALESET_PRIORITY = "kubernetes.azure.com/scalesetpriority"
# The cluster autoscaler taints a node it is about to remove.
TAINT_AUTOSCALER_DELETE = "ToBeDeletedByClusterAutoscaler"
RESOURCE_GPU = "nvidia.com/gpu"

# ---- containers and volumes of the pods the operator builds -----------------------------------------
MAIN_CONTAINER = "main"
SETUP_CONTAINER = "setup-task"
IDLE_CONTAINER = "idle"
VOLUME_CONFIG = "batchai-config"
VOLUME_TEMP = "batchai-temp"
VOLUME_SHM = "dshm"
VOLUME_SSH = "batchai-ssh"
VOLUME_SHARED_TEMP = "batchai-shared-temp"

# ---- TrainingJob executionState and conditions -------------------------------------------------------
QUEUED, RUNNING, TERMINATING, SUCCEEDED, FAILED = "queued", "running", "terminating", "succeeded", "failed"
TERMINAL_STATES = (SUCCEEDED, FAILED)
CONDITION_FOR_STATE = {
    QUEUED: "Queued",
    RUNNING: "Running",
    TERMINATING: "Running",
    SUCCEEDED: "Succeeded",
    FAILED: "Failed",
}
TRAININGJOB_CONDITION_TYPES = ("Queued", "Running", "Succeeded", "Failed", "Suspended")
CONDITION_SUSPENDED = "Suspended"
CONDITION_SPEC_APPLIED = "SpecApplied"
CONDITION_READY = "Ready"

# ---- Batch AI error codes (status.executionInfo.errors[].code, status.errors[].code) -----------------
ERR_JOB_FAILED = "JobFailed"
ERR_JOB_PREPARATION_FAILED = "JobPreparationFailed"
ERR_FAILED_STARTING_CONTAINER = "FailedStartingContainer"
ERR_AZF_MOUNT = "AZFMountError"
ERR_BFS_MOUNT = "BFSMountError"
ERR_NFS_MOUNT = "NFSMountError"
ERR_UNMANAGED_MOUNT = "UnmanagedFileSystemMountError"
ERR_VOLUME_MOUNT = "VolumeMountError"
ERR_MAX_WALL_CLOCK = "MaxWallClockTimeExceeded"
ERR_JOB_TERMINATED = "JobTerminated"
ERR_INVALID_SPEC = "InvalidSpec"
ERR_UNMANAGED_FS_NOT_ALLOWED = "UnmanagedFileSystemNotAllowed"
ERR_UNKNOWN_VM_SIZE = "UnknownVmSize"
ERR_INVALID_SHM_SIZE = "InvalidShmSize"
ERR_INVALID_CREDENTIALS = "InvalidCredentials"
ERR_SETUP_TASK_FAILED = "SetupTaskFailed"
ERR_SETUP_TASK_REJECTED = "SetupTaskRejected"
ERR_SCALE_FAILED = "ScaleFailed"
ERR_JOB_TOO_LARGE = "JobTooLarge"
# Powers an admin grants per namespace (chart values `allow.*`, config.AllowPolicy) that a namespace lacks.
ERR_SETUP_TASK_NOT_ALLOWED = "SetupTaskNotAllowed"
ERR_PLACEMENT_NOT_ALLOWED = "PlacementNotAllowed"
ERR_AGENT_POOL_NOT_ALLOWED = "AgentPoolNotAllowed"
ERR_SERVICE_ACCOUNT_NOT_ALLOWED = "ServiceAccountNotAllowed"

# ---- reasons a TrainingJob waits in `queued` (condition reasons) ------------------------------------
WAIT_CLUSTER_NOT_FOUND = "ClusterNotFound"
WAIT_CLUSTER_INVALID = "ClusterInvalid"
WAIT_SECRET_NOT_FOUND = "SecretNotFound"
WAIT_CREATION_REJECTED = "JobCreationRejected"
WAIT_SUSPENDED = "Suspended"
WAIT_FOR_NODES = "WaitingForNodes"
WAIT_CLUSTER_TOO_SMALL = "ClusterTooSmall"  # a multi-node job needs more nodes than its cluster can have
WAIT_PODS_REJECTED = "PodCreationRejected"
WAIT_KUEUE_HELD = "QueuedByKueue"  # Kueue keeps the Job suspended: no quota yet (decide/kueue.py)
WAIT_KUEUE_EVICTED = "EvictedByKueue"  # admitted once, then evicted or preempted by Kueue
WAIT_KUEUE_DEACTIVATED = "DeactivatedInKueue"  # the Kueue Workload's spec.active is false

# ---- reasons a TrainingJob stays `running` ----------------------------------------------------------
RUNNING_FINISHING = "Finishing"  # the Job failed; its failed pod's exit code has not reached us yet

# ---- BatchAICluster Ready condition reasons ------------------------------------------------------------
READY_STEADY = "Steady"
READY_RESIZING = "Resizing"
READY_NODES_PREPARING = "NodesPreparing"
READY_NODES_UNUSABLE = "NodesUnusable"
READY_NO_NODES = "NoNodes"
# A Warning Event (once per spec generation): the cluster names a VM size Azure has retired (vmsizes.py).
EVENT_RETIRED_VM_SIZE = "RetiredVmSize"
# scaleSettings differ from the node count and nothing will move it (no spec.aks, or the pool is not allowed).
READY_SCALE_NOT_APPLIED = "ScaleNotApplied"

# ---- what kubelets report about containers that cannot start -------------------------------------------
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
START_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
