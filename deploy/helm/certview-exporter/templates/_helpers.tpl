{{- define "certview-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "certview-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "certview-exporter.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "certview-exporter.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "certview-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "certview-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "certview-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "certview-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "certview-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "certview-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the credentials: an existing one, or the chart's. */}}
{{- define "certview-exporter.secretName" -}}
{{- default (include "certview-exporter.fullname" .) .Values.credentials.existingSecret }}
{{- end }}

{{- define "certview-exporter.hasCredentials" -}}
{{- if or .Values.credentials.existingSecret .Values.credentials.password .Values.credentials.clientSecret }}true{{ end }}
{{- end }}

{{/* The configuration file: the values' config, with the secret files and the snapshot
path set by the chart. No secret value is ever written into it. */}}
{{- define "certview-exporter.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $q := default dict $cfg.qualys }}
{{- if or (hasKey $q "password") (hasKey $q "client_secret") }}
{{- fail "config.qualys.password and config.qualys.client_secret are not allowed: put secrets in credentials (a Secret), never in the ConfigMap" }}
{{- end }}
{{- if include "certview-exporter.hasCredentials" . }}
{{- if $q.client_id }}
{{- $_ := set $q "client_secret_file" (printf "/etc/certview_exporter/secrets/%s" .Values.credentials.clientSecretKey) }}
{{- else }}
{{- $_ := set $q "password_file" (printf "/etc/certview_exporter/secrets/%s" .Values.credentials.passwordKey) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "qualys" $q }}
{{- $_ := set $cfg "snapshot" (dict "path" "/var/lib/certview_exporter/snapshot") }}
{{- toYaml $cfg }}
{{- end }}
