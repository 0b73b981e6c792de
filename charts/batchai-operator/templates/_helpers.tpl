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
