{{/* Names, labels and the settings every platform container shares. */}}

{{- define "forge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "forge.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "forge.labels" -}}
{{ include "forge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "forge.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "forge.apiUrl" -}}
{{- .Values.api.url | default (printf "http://%s-api.%s.svc:%v" (include "forge.fullname" .) .Release.Namespace .Values.api.service.port) -}}
{{- end -}}

{{/* The bus's names, as forge_core/adapters/bus/topology.py gives them (tests/chart checks they agree). */}}
{{- define "forge.stream" -}}
{{- $streams := dict "discovery" "pipeline-discovery" "ci" "pipeline-tasks" "artifact" "pipeline-artifacts" "release" "pipeline-releases" "deployment" "pipeline-releases" -}}
{{- $name := get $streams .type | required (printf "unknown job type %q" .type) -}}
{{- if .prefix }}{{ printf "%s-%s" .prefix $name }}{{ else }}{{ $name }}{{ end -}}
{{- end -}}

{{- define "forge.consumer" -}}
{{- if .prefix }}{{ printf "%s-worker-%s" .prefix .type }}{{ else }}{{ printf "worker-%s" .type }}{{ end -}}
{{- end -}}

{{/* Settings of every platform container: the bus, the object store, the database, the API's URL. */}}
{{- define "forge.env" -}}
- name: FORGE_STATE_DIR
  value: /var/lib/forge
- name: FORGE_NATS__URL
  value: {{ .Values.nats.url | quote }}
- name: FORGE_NATS__REPLICAS
  value: {{ .Values.nats.replicas | quote }}
{{- if .Values.nats.prefix }}
- name: FORGE_NATS__PREFIX
  value: {{ .Values.nats.prefix | quote }}
{{- end }}
{{- if .Values.nats.existingSecret }}
- name: FORGE_NATS__TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.nats.existingSecret | quote }}, key: {{ .Values.nats.tokenKey | quote }}}
{{- end }}
- name: FORGE_STORAGE__URL
  value: {{ .Values.storage.url | quote }}
{{- if .Values.storage.options }}
- name: FORGE_STORAGE__OPTIONS
  value: {{ .Values.storage.options | toJson | quote }}
{{- end }}
{{- if .Values.storage.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ .Values.storage.existingSecret | quote }}, key: {{ .Values.storage.accessKeyIdKey | quote }}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ .Values.storage.existingSecret | quote }}, key: {{ .Values.storage.secretAccessKeyKey | quote }}}
{{- end }}
- name: FORGE_API__URL
  value: {{ include "forge.apiUrl" . | quote }}
{{- range $name, $value := .Values.settings }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "forge.databaseEnv" -}}
- name: FORGE_DATABASE__URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.database.existingSecret | quote }}, key: {{ .Values.database.urlKey | quote }}}
- name: FORGE_DATABASE__POOL_SIZE
  value: {{ .Values.database.poolSize | quote }}
{{- end -}}

{{- define "forge.tokenEnv" -}}
- name: FORGE_API__TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.api.existingSecret | quote }}, key: {{ .Values.api.tokenKey | quote }}}
{{- end -}}

{{- define "forge.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{ toYaml . | nindent 2 }}
{{- end }}
securityContext: {{ toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A hook Job running one forge command (no ServiceAccount of the chart: hooks run before it exists). */}}
{{- define "forge.hookJob" -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "forge.fullname" .root }}-{{ .name }}
  labels:
    {{- include "forge.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .name }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ .root.Values.bootstrap.backoffLimit }}
  activeDeadlineSeconds: {{ .root.Values.bootstrap.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "forge.selectorLabels" .root | nindent 8 }}
        app.kubernetes.io/component: {{ .name }}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      {{- include "forge.podSpecCommon" .root | nindent 6 }}
      containers:
        - name: {{ .name }}
          image: {{ include "forge.image" .root | quote }}
          imagePullPolicy: {{ .root.Values.image.pullPolicy }}
          args: {{ toJson .args }}
          env:
            {{- include "forge.env" .root | nindent 12 }}
            {{- if .database }}
            {{- include "forge.databaseEnv" .root | nindent 12 }}
            {{- end }}
          securityContext: {{ toYaml .root.Values.securityContext | nindent 12 }}
          resources:
            requests: {cpu: 50m, memory: 128Mi}
            limits: {cpu: 500m, memory: 512Mi}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
            - {name: state, mountPath: /var/lib/forge}
      volumes:
        - {name: tmp, emptyDir: {}}
        - {name: state, emptyDir: {}}
{{- end -}}

{{/* The token of a Workflow's own tasks (close-run, stage-release, stage-deploy): argo.closeRun,
else the workers' token. */}}
{{- define "forge.closeRunToken" -}}
- name: FORGE_API__TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.argo.closeRun.existingSecret | default .Values.api.existingSecret | quote }}
      key: {{ ternary .Values.argo.closeRun.tokenKey .Values.api.tokenKey (ne .Values.argo.closeRun.existingSecret "") | quote }}
{{- end -}}
