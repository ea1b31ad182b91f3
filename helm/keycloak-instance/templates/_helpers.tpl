{{/*
Shared duli helpers: the same file in every chart under helm/ (keep them identical).
Standard labels: app.kubernetes.io/{name,instance,version,component,part-of,managed-by}
plus environment, team and tier, on every object a chart renders.
*/}}
{{- define "duli.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "duli.version" -}}
{{- $image := .Values.image | default dict -}}
{{- default .Chart.AppVersion $image.tag | toString | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "duli.selectorLabels" -}}
app.kubernetes.io/name: {{ include "duli.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "duli.labels" -}}
{{ include "duli.selectorLabels" . }}
app.kubernetes.io/version: {{ include "duli.version" . | quote }}
app.kubernetes.io/component: {{ required "values: component is required" .Values.component }}
app.kubernetes.io/part-of: duli
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
environment: {{ required "values: environment is required" .Values.environment }}
team: {{ required "values: team is required" .Values.team }}
tier: {{ required "values: tier is required" .Values.tier }}
{{- end -}}
