{{/* Namespace of every object: values.namespace, else the release namespace. */}}
{{- define "app.namespace" -}}
{{ .Values.namespace | default .Release.Namespace }}
{{- end }}

{{/* Labels that select the pods (must not change over the Deployment's life). */}}
{{- define "app.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.appName }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "app.labels" -}}
{{ include "app.selectorLabels" . }}
app.kubernetes.io/part-of: calculator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
