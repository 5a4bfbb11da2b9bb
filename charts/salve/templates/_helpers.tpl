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

{{/*
Image reference of a component, the same rule for operator, oms and ims:
  <image.repository>@<image.digest>   when image.digest is set (the tag is then ignored)
  <image.repository>:<image.tag>      otherwise; the tag defaults to the chart's appVersion
and never "latest". Call with (dict "root" $ "component" "oms").
*/}}
{{- define "salve.image" -}}
{{- $v := index .root.Values .component }}
{{- $repo := required (printf "%s.image.repository is required" .component) $v.image.repository }}
{{- $tag := toString (default .root.Chart.AppVersion $v.image.tag) }}
{{- if eq $tag "latest" }}
{{- fail (printf "%s.image.tag must not be \"latest\": pin a version so that rollbacks and remediations are reproducible" .component) }}
{{- end }}
{{- with $v.image.digest }}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" .) }}
{{- fail (printf "%s.image.digest must look like sha256:<64 hex digits>, not %q" $.component .) }}
{{- end }}
{{- printf "%s@%s" $repo . }}
{{- else }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
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
{{- $ns := .Values.operator.policy.allowedNamespaces }}
{{- if and (has "*" $ns) (gt (len (uniq $ns)) 1) }}
{{- fail (printf "operator.policy.allowedNamespaces: \"*\" (every namespace) must be the only entry, got %v" $ns) }}
{{- end }}
{{- if and .Values.operator.enabled (lt (int .Values.operator.replicas) 1) }}
{{- fail "operator.replicas must be at least 1 (2 for a warm standby)" }}
{{- end }}
{{- end }}

{{/*
The API keys the chart puts in its Secret (only when apiKeys.existingSecret is empty):
apiKeys.value, else the keys already in the Secret (lookup: kept across upgrades, and the
Secret carries helm.sh/resource-policy: keep), else a new random key. Memoised so that OMS and
IMS agree within one render. Never used for the pods' checksum annotation: without cluster
access (helm template, Argo CD) the lookup is empty and the random key differs on every render.
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

{{/*
What the pods' checksum/api-keys annotation is computed from: only values, never the Secret's
content, so that two renders with the same values give byte-identical pod templates (no restart
on every Argo CD / Flux sync). apiKeys.value: the keys themselves (changing them rolls the
pods, which read SALVE_API_KEYS at start-up). Generated key or existingSecret: the Secret's name
and key (rotating the key inside the Secret needs `kubectl rollout restart`).
*/}}
{{- define "salve.apiKeysChecksumSource" -}}
{{- if and (not .Values.apiKeys.existingSecret) .Values.apiKeys.value }}
{{- printf "value:%s" .Values.apiKeys.value }}
{{- else }}
{{- printf "secret:%s/%s" (include "salve.apiKeysSecretName" .) .Values.apiKeys.secretKey }}
{{- end }}
{{- end }}

{{/*
Namespaces the operator may act in (SALVE_ALLOWED_NAMESPACES): operator.policy.allowedNamespaces,
de-duplicated, or the release namespace when empty. ["*"] means every namespace. The operator
Deployment's policy and the RBAC (a Role per namespace, or a ClusterRole for "*") both come
from this list, so they cannot disagree.
*/}}
{{- define "salve.operatorNamespaces" -}}
{{- $ns := .Values.operator.policy.allowedNamespaces | default (list .Release.Namespace) | uniq }}
{{- join "," $ns }}
{{- end }}
