{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "salve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name prefix of every resource: <release>-salve, or <release> if it contains the chart name. */}}
{{- define "salve.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every resource. Call with (dict "root" $ "component" "oms"). */}}
{{- define "salve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: salve
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "salve.selectorLabels" . }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels (immutable on a Deployment: never add to them). */}}
{{- define "salve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "salve.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Name of a component's ServiceAccount. Call with (dict "root" $ "component" "oms"). */}}
{{- define "salve.serviceAccountName" -}}
{{- $v := index .root.Values .component }}
{{- if $v.serviceAccount.create }}
{{- default (printf "%s-%s" (include "salve.fullname" .root) .component) $v.serviceAccount.name }}
{{- else }}
{{- required (printf "%s.serviceAccount.name is required when %s.serviceAccount.create=false" .component .component) $v.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image reference; the tag defaults to the appVersion and may never be "latest". */}}
{{- define "salve.image" -}}
{{- $v := index .root.Values .component }}
{{- $tag := toString (default .root.Chart.AppVersion $v.image.tag) }}
{{- if eq $tag "latest" }}
{{- fail (printf "%s.image.tag must not be \"latest\": pin a version so that rollbacks and remediations are reproducible" .component) }}
{{- end }}
{{- printf "%s:%s" (required (printf "%s.image.repository is required" .component) $v.image.repository) $tag }}
{{- end }}

{{/* Name of the Secret holding SALVE_API_KEYS. */}}
{{- define "salve.apiKeysSecretName" -}}
{{- default (printf "%s-api-keys" (include "salve.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{/* True (non-empty) when either shop service uses AWS. */}}
{{- define "salve.awsMode" -}}
{{- if or (eq .Values.backend.store "dynamodb") (eq .Values.backend.bus "sqs") }}true{{ end }}
{{- end }}

{{/* Checks that the values describe a set-up that can run; fails the render with a clear message otherwise. */}}
{{- define "salve.validate" -}}
{{- if not (has .Values.backend.store (list "embedded" "dynamodb")) }}
{{- fail (printf "backend.store must be embedded or dynamodb, not %q" .Values.backend.store) }}
{{- end }}
{{- if not (has .Values.backend.bus (list "embedded" "sqs")) }}
{{- fail (printf "backend.bus must be embedded or sqs, not %q" .Values.backend.bus) }}
{{- end }}
{{- if and (eq .Values.backend.store "dynamodb") (eq .Values.backend.bus "embedded") }}
{{- fail "backend.store=dynamodb needs backend.bus=sqs (DynamoDB has no dead-letter table; the SQS DLQs keep rejected messages)" }}
{{- end }}
{{- if and (include "salve.awsMode" .) (or .Values.oms.enabled .Values.ims.enabled) (not .Values.aws.region) }}
{{- fail "aws.region is required with backend.store=dynamodb or backend.bus=sqs" }}
{{- end }}
{{- if eq .Values.backend.store "embedded" }}
{{- range $c := list "oms" "ims" }}
{{- $v := index $.Values $c }}
{{- if and $v.enabled (gt (int $v.replicas) 1) }}
{{- fail (printf "%s.replicas must be 1 with backend.store=embedded (each pod would have its own SQLite file); use backend.store=dynamodb to scale out" $c) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.operator.enabled (lt (int .Values.operator.replicas) 1) }}
{{- fail "operator.replicas must be at least 1 (2 for a warm standby)" }}
{{- end }}
{{- end }}

{{/*
The API keys the chart puts in its Secret: apiKeys.value, else the keys already in the Secret
(kept across upgrades), else a new random key. Memoised so that the Secret and the pods'
checksum annotation agree within one render.
*/}}
{{- define "salve.apiKeysValue" -}}
{{- if not (hasKey .Values.apiKeys "_generated") }}
{{- $value := .Values.apiKeys.value }}
{{- if not $value }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "salve.apiKeysSecretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data .Values.apiKeys.secretKey) }}
{{- $value = index $existing.data .Values.apiKeys.secretKey | b64dec }}
{{- else }}
{{- $value = randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- $_ := set .Values.apiKeys "_generated" $value }}
{{- end }}
{{- index .Values.apiKeys "_generated" }}
{{- end }}
