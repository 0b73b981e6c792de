{{- define "batchai-operator.name" -}}batchai-operator{{- end -}}
{{- define "batchai-operator.fullname" -}}
{{- if contains "batchai-operator" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-batchai-operator" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- define "batchai-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "batchai-operator.fullname" .) .Values.serviceAccount.name }}
{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}
{{- define "batchai-operator.labels" -}}
app.kubernetes.io/name: batchai-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "batchai-operator.selectorLabels" -}}
app.kubernetes.io/name: batchai-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The operator's rights on namespaced objects: exactly what its code uses (kube.py, reconcile/) and
kopf's own needs (list+watch of every watched resource, Event create). A ClusterRole's rules without
watchNamespaces; a Role's in each watched namespace with them. */}}
{{- define "batchai-operator.namespacedRules" -}}
# watched and indexed by kopf; delete: ttlSecondsAfterFinished removes the TrainingJob.
- apiGroups: [batchai.io]
  resources: [trainingjobs]
  verbs: [list, watch, delete]
# patch: the batchai.io/applied-scale-settings annotation after the agent pool was scaled.
- apiGroups: [batchai.io]
  resources: [batchaiclusters]
  verbs: [list, watch, patch]
- apiGroups: [batchai.io]
  resources: [trainingjobs/status, batchaiclusters/status]
  verbs: [patch]
# Children carry ownerReferences with blockOwnerDeletion: true; clusters that enable the
# OwnerReferencesPermissionEnforcement admission plugin require `update` on the owner's finalizers.
- apiGroups: [batchai.io]
  resources: [trainingjobs/finalizers, batchaiclusters/finalizers]
  verbs: [update]
# patch: spec.suspend passed through to the Job; delete: terminate, node-0 exit, wall-clock limit;
# get: on a create that finds the name taken, whose child it is (metadata only).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
# a multi-node job's gang (gang: auto or workload; docs/gang-scheduling.md): its Workload and PodGroup,
# owned by the TrainingJob (garbage-collected); get: on a create that finds the name taken, whose it is
# (metadata only), and a waiting job's PodGroup (its condition says why the gang waits).
- apiGroups: [scheduling.k8s.io]
  resources: [workloads, podgroups]
  verbs: [get, create]
# the setup-task DaemonSet per cluster: created, replaced by a guarded JSON patch, deleted; get: on a
# create that finds the name taken, whose DaemonSet it is (metadata only).
- apiGroups: [apps]
  resources: [daemonsets]
  verbs: [get, list, watch, create, patch, delete]
# patch: a setup-task pod whose task finished gets the batchai.io/setup-task-state label, which the
# cluster's job pods require before they land on its node. Pods are never created or deleted directly.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, patch]
# per-job hostfile/launcher ConfigMap and headless Service (owned by the TrainingJob: garbage-collected);
# get: on a create that finds the name taken, whose child it is (metadata only).
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, create]
# the per-job shared temp volume of multi-node jobs (owned by the TrainingJob: garbage-collected);
# get: on a create that finds the name taken, whose claim it is (metadata only).
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create]
# create only: per-job SSH keys, and whether a referenced Secret exists (a dry-run create answers
# AlreadyExists). No get, list or watch: the operator can neither read nor enumerate Secrets.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
# kopf.event() posts core/v1 Events; list/watch: the kubelets' FailedMount Events of job pods and the
# Job controller's FailedCreate Events of job Jobs (field-selected watches), reported in status.
- apiGroups: [""]
  resources: [events]
  verbs: [create, list, watch]
{{- end -}}

{{/* Cluster-scoped reads only: nodes (cluster node counts), CRDs (kopf's scanning), namespaces (kopf,
with named namespaces). */}}
{{- define "batchai-operator.clusterRules" -}}
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, watch]
# kopf scans for the CRDs it serves and notices them appearing or changing.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.watchNamespaces }}
# kopf lists namespaces only when it watches named namespaces (not with --all-namespaces).
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end -}}

{{/* A CEL list of string literals (values are schema-checked names, so quoting is enough). */}}
{{- define "batchai-operator.celList" -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ squote $v }}{{ end }}]
{{- end -}}

{{/* CEL: whether request.namespace matches one of the patterns in the list variable named by the
argument ("name", "prefix*", "*"). */}}
{{- define "batchai-operator.celGranted" -}}
variables.{{ . }}.exists(p, p == '*' || p == request.namespace || (p.endsWith('*') && request.namespace.startsWith(p.substring(0, size(p) - 1))))
{{- end -}}
