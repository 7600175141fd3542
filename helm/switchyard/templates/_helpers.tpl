{{/*
Names, labels and shared pod pieces. Selector labels are a subset of the full labels:
app.kubernetes.io/name, /instance and /component (the agent's name, `gateway` or `jaeger`).
*/}}

{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* `<release>-switchyard`, or the release name when it already contains the chart name. */}}
{{- define "switchyard.fullname" -}}
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

{{/* Object name of a component: `<fullname>-<component>`. Args: (list $ component). */}}
{{- define "switchyard.componentName" -}}
{{- $ := index . 0 -}}
{{- printf "%s-%s" (include "switchyard.fullname" $) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of a component. Args: (list $ component). */}}
{{- define "switchyard.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "switchyard.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Full labels of a component's objects. Args: (list $ component). */}}
{{- define "switchyard.labels" -}}
{{- $ := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "switchyard.selectorLabels" . }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- with $.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The headless Service DNS name of an agent. Args: (list $ agent). */}}
{{- define "switchyard.headlessHost" -}}
{{- $ := index . 0 -}}
{{- printf "%s-headless.%s.svc.%s" (include "switchyard.componentName" .) $.Release.Namespace $.Values.clusterDomain }}
{{- end }}

{{/*
A registry entry list `name=dns:///<headless host>:<port>;…` (the `SWITCHYARD_AGENTS` format,
gRPC name-resolution syntax) for the agents named. Args: (list $ names).
*/}}
{{- define "switchyard.registry" -}}
{{- $ := index . 0 -}}
{{- $agents := include "switchyard.agents" $ | fromYaml }}
{{- $entries := list }}
{{- range $name := index . 1 }}
{{- $a := get $agents $name }}
{{- if not $a }}
{{- fail (printf "agent %q is called (an agent's `calls`) but is not an enabled agent under `agents`" $name) }}
{{- end }}
{{- $entries = append $entries (printf "%s=dns:///%s:%d" $name (include "switchyard.headlessHost" (list $ $name)) (int $a.port)) }}
{{- end }}
{{- join ";" $entries }}
{{- end }}

{{/* `a` with `b` laid over it: maps merge key by key, any other value of `b` wins (false too). */}}
{{- define "switchyard.deepMerge" -}}
{{- $base := index . 0 }}
{{- $over := index . 1 }}
{{- $out := dict }}
{{- range $k, $v := $base }}
{{- if hasKey $over $k }}
{{- $o := index $over $k }}
{{- if and (kindIs "map" $v) (kindIs "map" $o) }}
{{- $_ := set $out $k (include "switchyard.deepMerge" (list $v $o) | fromYaml) }}
{{- else }}
{{- $_ := set $out $k $o }}
{{- end }}
{{- else }}
{{- $_ := set $out $k $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $over }}
{{- if not (hasKey $base $k) }}
{{- $_ := set $out $k $v }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* Every enabled agent, `agentDefaults` merged under its own values, as YAML by name. */}}
{{- define "switchyard.agents" -}}
{{- $out := dict }}
{{- range $name, $v := .Values.agents }}
{{- $a := include "switchyard.deepMerge" (list $.Values.agentDefaults (default dict $v)) | fromYaml }}
{{- if $a.enabled }}
{{- if not $a.command }}
{{- $_ := set $a "command" (list (printf "switchyard-%s" $name)) }}
{{- end }}
{{- $_ := set $out $name $a }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* The image reference. Args: (list $ override-map). */}}
{{- define "switchyard.image" -}}
{{- $ := index . 0 -}}
{{- $i := index . 1 }}
{{- $repo := default $.Values.image.repository $i.repository }}
{{- $tag := default (default $.Chart.AppVersion $.Values.image.tag) $i.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{/* Environment every container gets: logging, tracing, extraEnv. Args: (list $ serviceName). */}}
{{- define "switchyard.commonEnv" -}}
{{- $ := index . 0 -}}
- name: SWITCHYARD_LOG_FORMAT
  value: {{ $.Values.logFormat | quote }}
- name: RUST_LOG
  value: {{ $.Values.logLevel | quote }}
{{- $endpoint := include "switchyard.otlpEndpoint" $ }}
{{- if $endpoint }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $endpoint | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ index . 1 | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),service.namespace={{ $.Release.Namespace }}"
{{- with $.Values.tracing.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with $.Values.tracing.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- with $.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The OTLP endpoint pods export to, or empty when tracing is off. */}}
{{- define "switchyard.otlpEndpoint" -}}
{{- if .Values.tracing.otlpEndpoint }}
{{- if or .Values.tracing.enabled .Values.jaeger.enabled }}
{{- .Values.tracing.otlpEndpoint }}
{{- end }}
{{- else if .Values.jaeger.enabled }}
{{- printf "http://%s.%s.svc.%s:4317" (include "switchyard.componentName" (list . "jaeger")) .Release.Namespace .Values.clusterDomain }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every pod. Args: (list $ component). */}}
{{- define "switchyard.podSpecCommon" -}}
{{- $args := . -}}
{{- $ := index . 0 -}}
{{- with $ }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $affinity := deepCopy .Values.affinity }}
{{- if .Values.podAntiAffinity }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "switchyard.selectorLabels" (list $ (index $args 1)) | fromYaml)) }}
{{- $anti := ternary (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) (eq .Values.podAntiAffinity "hard") }}
{{- $_ := set $affinity "podAntiAffinity" $anti }}
{{- end }}
{{- with $affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod annotations: user annotations and Prometheus scrape hints. Args: (list $ port). */}}
{{- define "switchyard.podAnnotations" -}}
{{- $ := index . 0 -}}
{{- if $.Values.metrics.annotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ index . 1 | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with $.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The gateway's public base URL (used in the agent cards it serves): `gateway.publicUrl`, else
the first Ingress host, else the gateway Service's cluster DNS name.
*/}}
{{- define "switchyard.gatewayUrl" -}}
{{- $g := .Values.gateway }}
{{- if $g.publicUrl }}
{{- $g.publicUrl }}
{{- else if and $g.ingress.enabled $g.ingress.hosts }}
{{- printf "%s://%s" (ternary "https" "http" (not (empty $g.ingress.tls))) (first $g.ingress.hosts).host }}
{{- else }}
{{- printf "http://%s.%s.svc.%s:%d" (include "switchyard.componentName" (list . "gateway")) .Release.Namespace .Values.clusterDomain (int $g.service.port) }}
{{- end }}
{{- end }}

{{/* Secret of a component's mTLS certificate. Args: (list $ component). */}}
{{- define "switchyard.tlsSecret" -}}
{{- $ := index . 0 -}}
{{- $c := index . 1 -}}
{{- default (printf "%s-tls" (include "switchyard.componentName" (list $ $c))) (index $.Values.mtls.secretNames $c) -}}
{{- end }}

{{/* mTLS environment of a workload (SWITCHYARD_TLS_*). Args: (list $ component). */}}
{{- define "switchyard.mtlsEnv" -}}
{{- $ := index . 0 -}}
{{- if $.Values.mtls.enabled }}
- name: SWITCHYARD_TLS_CA
  value: /etc/switchyard/tls/ca.crt
- name: SWITCHYARD_TLS_CERT
  value: /etc/switchyard/tls/tls.crt
- name: SWITCHYARD_TLS_KEY
  value: /etc/switchyard/tls/tls.key
{{- end }}
{{- end }}
