{{/*
One shop service (OMS or IMS): ServiceAccount, settings ConfigMap, optional PVC, Deployment,
Service and PodDisruptionBudget. Call with
  (dict "root" $ "component" "oms" "peer" "ims" "prefix" "OMS" "peerPrefix" "IMS" "peerUrl" .Values.oms.imsUrl)
*/}}
{{- define "salve.shop" -}}
{{- $root := .root }}
{{- $c := .component }}
{{- $v := index $root.Values $c }}
{{- $peerV := index $root.Values .peer }}
{{- $fullname := include "salve.fullname" $root }}
{{- $name := printf "%s-%s" $fullname $c }}
{{- $ctx := dict "root" $root "component" $c }}
{{- $P := .prefix }}
{{- $peerUrl := .peerUrl | default (printf "http://%s-%s:%v" $fullname .peer $peerV.service.port) }}
{{- $embeddedStore := eq $root.Values.backend.store "embedded" }}
{{- $aws := include "salve.awsMode" $root }}
{{- if $v.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "salve.serviceAccountName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "salve.labels" $ctx | nindent 4 }}
  {{- with $v.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# The service never calls the Kubernetes API (IRSA injects its own projected token).
automountServiceAccountToken: false
---
{{- end }}
# Runtime settings, mounted as a directory (not subPath) so that the kubelet's updates reach
# the pod; the service re-reads the file within a second of a change.
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}-settings
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "salve.labels" $ctx | nindent 4 }}
data:
  settings.toml: |
    {{- $v.settings | nindent 4 }}
{{- if and $embeddedStore $v.persistence.enabled }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ $name }}-data
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "salve.labels" $ctx | nindent 4 }}
spec:
  accessModes: ["ReadWriteOnce"]
  {{- with $v.persistence.storageClass }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ $v.persistence.size }}
{{- end }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "salve.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ $v.replicas }}
  {{- if $embeddedStore }}
  # One SQLite file, one pod: never run the old and the new pod side by side.
  strategy: {type: Recreate}
  {{- end }}
  selector:
    matchLabels:
      {{- include "salve.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "salve.labels" $ctx | nindent 8 }}
      annotations:
        # Rolls the pods when apiKeys.value changes (the keys are read at start-up). Computed
        # from values only, never from a generated key, so that every render of the same values
        # gives the same pod template. The settings ConfigMap deliberately has no checksum: it
        # is reloaded live.
        checksum/api-keys: {{ include "salve.apiKeysChecksumSource" $root | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "salve.serviceAccountName" $ctx }}
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 30
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if and $aws $root.Values.aws.initResources }}
      initContainers:
        # Creates the tables (GSIs, TTL) and the queue + DLQ if missing; idempotent.
        - name: init-aws
          image: {{ include "salve.image" $ctx }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: ["init-aws"]
          env:
            {{- include "salve.shopAwsEnv" (dict "root" $root "v" $v "P" $P) | nindent 12 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
      {{- end }}
      containers:
        - name: {{ $c }}
          image: {{ include "salve.image" $ctx }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: ["serve"]
          env:
            - {name: {{ $P }}_LISTEN, value: "0.0.0.0:8080"}
            - {name: {{ $P }}_DATA_DIR, value: /data}
            - {name: {{ $P }}_{{ .peerPrefix }}_URL, value: {{ $peerUrl | quote }}}
            - {name: {{ $P }}_SETTINGS_FILE, value: /etc/salve/{{ $c }}/settings.toml}
            - {name: {{ $P }}_LOG_FORMAT, value: {{ $v.logFormat | quote }}}
            - name: SALVE_API_KEYS
              valueFrom:
                secretKeyRef:
                  name: {{ include "salve.apiKeysSecretName" $root }}
                  key: {{ $root.Values.apiKeys.secretKey }}
            {{- include "salve.shopAwsEnv" (dict "root" $root "v" $v "P" $P) | nindent 12 }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            # Business API, /healthz, /readyz, /metrics and /openapi.json.
            - {name: http, containerPort: 8080, protocol: TCP}
          # /healthz: the process serves HTTP. /readyz: the database is reachable and the
          # outbox is not stuck (outbox_stuck_after_secs in the settings).
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 5
            failureThreshold: 3
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 2
            failureThreshold: 30
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - {name: settings, mountPath: /etc/salve/{{ $c }}, readOnly: true}
            - {name: data, mountPath: /data}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: settings
          configMap:
            name: {{ $name }}-settings
        - name: data
          {{- if and $embeddedStore $v.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ $name }}-data
          {{- else }}
          emptyDir: {}
          {{- end }}
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "salve.labels" $ctx | nindent 4 }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "salve.selectorLabels" $ctx | nindent 4 }}
  ports:
    - {name: http, port: {{ $v.service.port }}, targetPort: http, protocol: TCP}
{{- if $v.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "salve.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ $v.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "salve.selectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- end }}

{{/* Store, bus and AWS variables of a shop service. Call with (dict "root" $ "v" $v "P" "OMS"). */}}
{{- define "salve.shopAwsEnv" -}}
{{- $root := .root }}
{{- $P := .P -}}
- {name: {{ $P }}_STORE, value: {{ $root.Values.backend.store | quote }}}
- {name: {{ $P }}_BUS, value: {{ $root.Values.backend.bus | quote }}}
{{- if include "salve.awsMode" $root }}
- {name: {{ $P }}_TABLE_PREFIX, value: {{ $root.Values.aws.tablePrefix | quote }}}
- {name: {{ $P }}_QUEUE_NAME, value: {{ .v.queueName | quote }}}
- {name: {{ $P }}_{{ if eq $P "OMS" }}IMS{{ else }}OMS{{ end }}_QUEUE_NAME, value: {{ .v.peerQueueName | quote }}}
- {name: {{ $P }}_QUEUE_MAX_RECEIVES, value: {{ $root.Values.aws.queueMaxReceives | quote }}}
- {name: SALVE_ENVIRONMENT, value: {{ $root.Values.aws.environment | quote }}}
- {name: AWS_REGION, value: {{ $root.Values.aws.region | quote }}}
{{- with $root.Values.aws.endpointUrl }}
- {name: AWS_ENDPOINT_URL, value: {{ . | quote }}}
{{- end }}
{{- with $root.Values.aws.credentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ . | quote }}, key: AWS_ACCESS_KEY_ID}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ . | quote }}, key: AWS_SECRET_ACCESS_KEY}}
{{- end }}
{{- end }}
{{- end }}
