{{- define "stash.image" -}}
{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- define "stash.labels" -}}
app.kubernetes.io/name: stash-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "stash.selector" -}}
app.kubernetes.io/name: stash-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
