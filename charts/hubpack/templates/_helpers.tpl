{{/* The chart's name: `nameOverride`, else "hubpack". */}}
{{- define "hubpack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object's name, by Helm's convention: `fullnameOverride`, else the
     release name when it already contains the chart's name (release "hubpack" ->
     "hubpack-scheduler"), else "<release>-<name>"; at most 63 characters (a DNS label). */}}
{{- define "hubpack.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "hubpack.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
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

{{- define "hubpack.controller.selector" -}}
app.kubernetes.io/name: hubpack
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: placeholder-ctl
{{- end -}}

{{/* "repository:tag" of a component's image: its own fields, else the shared `image`.
     Call with (dict "root" $ "image" .Values.scheduler.image). */}}
{{- define "hubpack.image" -}}
{{- $repo := .image.repository | default .root.Values.image.repository -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{- define "hubpack.pullPolicy" -}}
{{- .image.pullPolicy | default .root.Values.image.pullPolicy -}}
{{- end -}}

{{/* The pod securityContext of hubpack's own pods: the image's non-root user (distroless
     "nonroot", 65532), the runtime's default seccomp profile. */}}
{{- define "hubpack.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "hubpack.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/* Placement of a hubpack component (scheduler or controller) on the core pool, plus
     anti-affinity between its replicas. Call with
     (dict "root" $ "c" .Values.scheduler "selector" "hubpack.scheduler.selector"). */}}
{{- define "hubpack.corePlacement" -}}
{{- $core := .root.Values.corePool -}}
{{- $nodeSelector := ternary $core.nodeSelector .c.nodeSelector (kindIs "invalid" .c.nodeSelector) -}}
{{- $tolerations := ternary $core.tolerations .c.tolerations (kindIs "invalid" .c.tolerations) -}}
{{- $affinity := dict -}}
{{- if kindIs "invalid" .c.affinity -}}
{{- with $core.nodeAffinity -}}{{- $_ := set $affinity "nodeAffinity" . -}}{{- end -}}
{{- else -}}
{{- $affinity = deepCopy .c.affinity -}}
{{- end -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include .selector .root | fromYaml)) -}}
{{- if eq .c.podAntiAffinity "soft" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- else if eq .c.podAntiAffinity "hard" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- end -}}
{{- with $nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The scheduler's config file as rendered: scheduler.config, with /metrics on
     scheduler.metrics.port unless the config sets metricsAddress, so the probes and the
     Service always find it. */}}
{{- define "hubpack.scheduler.config" -}}
{{- $config := deepCopy (.Values.scheduler.config | default dict) -}}
{{- if not (hasKey $config "schedulerName") -}}
{{- $_ := set $config "schedulerName" (include "hubpack.schedulerName" .) -}}
{{- end -}}
{{- if not (hasKey $config "metricsAddress") -}}
{{- $_ := set $config "metricsAddress" (printf "0.0.0.0:%v" .Values.scheduler.metrics.port) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The scheduler's name (user pods' spec.schedulerName): scheduler.config.schedulerName,
     else its Deployment's name, `<fullname>-scheduler` (release "hubpack":
     "hubpack-scheduler"), so two releases in one cluster never answer to the same name. */}}
{{- define "hubpack.schedulerName" -}}
{{- (.Values.scheduler.config).schedulerName | default (printf "%s-scheduler" (include "hubpack.fullname" .)) -}}
{{- end -}}

{{/* Where the controller's placeholders and pre-pullers live: controller.placeholderNamespace,
     else the release namespace. */}}
{{- define "hubpack.controller.objectNamespace" -}}
{{- .Values.controller.placeholderNamespace | default .Release.Namespace -}}
{{- end -}}

{{/* The ConfigMap owning the controller's objects when they live outside the release
     namespace (an owner must share its dependents' namespace). */}}
{{- define "hubpack.controller.ownerName" -}}
{{- printf "%s-placeholder-ctl-owner" (include "hubpack.fullname" .) -}}
{{- end -}}

{{/* The controller's config file as rendered from controller.config, with the chart's
     defaults for what it knows: the scheduler's name, /metrics on controller.metrics.port,
     PriorityClass names of this release, and each pool's scheduling constraints from
     userPool when the pool gives none. */}}
{{- define "hubpack.controller.config" -}}
{{- $config := deepCopy (.Values.controller.config | default dict) -}}
{{- if not (hasKey $config "schedulerName") -}}
{{- $_ := set $config "schedulerName" (include "hubpack.schedulerName" .) -}}
{{- end -}}
{{- /* Ownership: the release's objects carry app.kubernetes.io/instance=<release>, and
       deleting the config ConfigMap (helm uninstall) garbage-collects them. */ -}}
{{- if not (hasKey $config "instance") -}}
{{- $_ := set $config "instance" .Release.Name -}}
{{- end -}}
{{- $objects := include "hubpack.controller.objectNamespace" . -}}
{{- if ne $objects .Release.Namespace -}}
{{- /* Placeholders in a namespace of their own: the Lease stays in the release namespace,
       and a ConfigMap of the chart's there owns them. */ -}}
{{- $_ := set $config "namespace" $objects -}}
{{- $le := $config.leaderElection | default dict -}}
{{- if not (hasKey $le "namespace") -}}
{{- $_ := set $le "namespace" .Release.Namespace -}}
{{- end -}}
{{- $_ := set $config "leaderElection" $le -}}
{{- if not (hasKey $config "ownerConfigMap") -}}
{{- $_ := set $config "ownerConfigMap" (include "hubpack.controller.ownerName" .) -}}
{{- end -}}
{{- end -}}
{{- if not (hasKey $config "ownerConfigMap") -}}
{{- $_ := set $config "ownerConfigMap" (printf "%s-placeholder-ctl" (include "hubpack.fullname" .)) -}}
{{- end -}}
{{- /* User pods are the release namespace's (the hub's), not every hub's of the cluster. */ -}}
{{- $users := $config.userPods | default dict -}}
{{- if not (hasKey $users "namespace") -}}
{{- $_ := set $users "namespace" .Release.Namespace -}}
{{- end -}}
{{- $_ := set $config "userPods" $users -}}
{{- /* The learned state's ConfigMap: per release, the one name the Role grants. */ -}}
{{- $cp := $config.checkpoint | default dict -}}
{{- if not (hasKey $cp "configMapName") -}}
{{- $_ := set $cp "configMapName" (printf "%s-placeholder-ctl-state" (include "hubpack.fullname" .)) -}}
{{- end -}}
{{- $_ := set $config "checkpoint" $cp -}}
{{- if not (hasKey $config "metricsAddress") -}}
{{- $_ := set $config "metricsAddress" (printf "0.0.0.0:%v" .Values.controller.metrics.port) -}}
{{- end -}}
{{- $ph := $config.placeholders | default dict -}}
{{- if not (hasKey $ph "priorityClassName") -}}
{{- $_ := set $ph "priorityClassName" (printf "%s-placeholder" (include "hubpack.fullname" .)) -}}
{{- end -}}
{{- $_ := set $config "placeholders" $ph -}}
{{- $pp := $config.prePuller | default dict -}}
{{- if not (hasKey $pp "priorityClassName") -}}
{{- $_ := set $pp "priorityClassName" (printf "%s-prepuller" (include "hubpack.fullname" .)) -}}
{{- end -}}
{{- $_ := set $config "prePuller" $pp -}}
{{- $pools := list -}}
{{- range $config.pools -}}
{{- $pool := deepCopy . -}}
{{- if and (not (hasKey $pool "nodeSelector")) $.Values.userPool.nodeSelector -}}
{{- $_ := set $pool "nodeSelector" $.Values.userPool.nodeSelector -}}
{{- end -}}
{{- if and (not (hasKey $pool "tolerations")) $.Values.userPool.tolerations -}}
{{- $_ := set $pool "tolerations" $.Values.userPool.tolerations -}}
{{- end -}}
{{- if and (not (hasKey $pool "affinity")) $.Values.userPool.affinity -}}
{{- $_ := set $pool "affinity" $.Values.userPool.affinity -}}
{{- end -}}
{{- $pools = append $pools $pool -}}
{{- end -}}
{{- $_ := set $config "pools" $pools -}}
{{- /* A calendar URL from a Secret reaches the controller as a mounted file (urlFile), so
       the token is never in this ConfigMap and the controller needs no Secret rights. */ -}}
{{- $calendars := list -}}
{{- range $i, $c := $config.calendars -}}
{{- $cal := deepCopy $c -}}
{{- if $cal.urlSecret -}}
{{- $_ := set $cal "urlFile" (printf "%s/%d/url" (include "hubpack.controller.calendarDir" $) $i) -}}
{{- $_ := unset $cal "urlSecret" -}}
{{- end -}}
{{- $calendars = append $calendars $cal -}}
{{- end -}}
{{- if $config.calendars -}}
{{- $_ := set $config "calendars" $calendars -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Where calendar URL Secrets are mounted in the controller: <dir>/<index>/url. */}}
{{- define "hubpack.controller.calendarDir" -}}/var/run/hubpack/calendars{{- end -}}
