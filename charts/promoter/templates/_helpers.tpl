{{/* Namespace of every object: values.namespace, else the release namespace. */}}
{{- define "promoter.namespace" -}}
{{ .Values.namespace | default .Release.Namespace }}
{{- end }}

{{/* Labels that select the pods (must not change over the Deployment's life). */}}
{{- define "promoter.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.appName }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "promoter.labels" -}}
{{ include "promoter.selectorLabels" . }}
app.kubernetes.io/version: {{ include "promoter.tag" . | quote }}
app.kubernetes.io/component: daemon
app.kubernetes.io/part-of: platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The image tag: image.tag, else the chart's appVersion. */}}
{{- define "promoter.tag" -}}
{{ .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "promoter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default .Values.appName }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{/* The Secret holding promoter's secrets (existingSecret, required). */}}
{{- define "promoter.secretName" -}}
{{ required "existingSecret: name the Secret holding gitlab-token (see the chart's README.md)" .Values.existingSecret }}
{{- end }}

{{/* The HTTP port: the port of config.server.listen (e.g. 0.0.0.0:8080 or [::]:8080). */}}
{{- define "promoter.port" -}}
{{- $listen := required "config.server.listen: the daemon's listen address is required" .Values.config.server.listen | toString -}}
{{- $port := regexFind ":[0-9]+$" $listen | trimPrefix ":" -}}
{{- if not $port -}}
{{- fail (printf "config.server.listen: %q has no port" $listen) -}}
{{- end -}}
{{ $port }}
{{- end }}

{{/* The state directory: config.state_dir, where the state volume is mounted. */}}
{{- define "promoter.stateDir" -}}
{{- $dir := required "config.state_dir: the git mirror's directory is required" .Values.config.state_dir | toString -}}
{{- if not (isAbs $dir) -}}
{{- fail (printf "config.state_dir: %q must be an absolute path (the state volume is mounted there)" $dir) -}}
{{- end -}}
{{ $dir }}
{{- end }}

{{/* The token file must be where the chart mounts the Secret's gitlab-token key. */}}
{{- define "promoter.checkTokenFile" -}}
{{- $want := "/etc/promoter/secrets/gitlab-token" -}}
{{- $got := (.Values.config.gitlab | default dict).token_file | default "" -}}
{{- if ne $got $want -}}
{{- fail (printf "config.gitlab.token_file must be %s (where the chart mounts the gitlab-token key of existingSecret), not %q" $want $got) -}}
{{- end -}}
{{- end }}
