{{- define "hubpack.fullname" -}}
{{- if .Values.fullnameOverride -}}{{ .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-hubpack" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "hubpack.labels" -}}
app.kubernetes.io/name: hubpack
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hubpack.scheduler.selector" -}}
app.kubernetes.io/name: hubpack
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: scheduler
{{- end -}}

{{- define "hubpack.placeholder.selector" -}}
app.kubernetes.io/name: hubpack
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: user-placeholder
{{- end -}}

{{- define "hubpack.prepuller.selector" -}}
app.kubernetes.io/name: hubpack
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: image-prepuller
{{- end -}}

{{/* The user pool's scheduling constraints, shared by placeholders and pre-pullers so they
     land where users land. */}}
{{- define "hubpack.userPool" -}}
{{- with .Values.userPool.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.userPool.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.userPool.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
