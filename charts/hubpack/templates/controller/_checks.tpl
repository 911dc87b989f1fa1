{{/* The controller's config rules that relate two fields, which values.schema.json cannot
     express, checked on the config as rendered (pools already carry userPool's constraints):
     each mirrors a check of placeholder-ctl/src/config.rs, so a value the binary would refuse
     fails `helm install`, naming the field. */}}
{{- define "hubpack.controller.checks" -}}
{{- $config := include "hubpack.controller.config" . | fromYaml -}}
{{- $lt := $config.leadTime | default dict -}}
{{- $min := $lt.minSamples | default 5 | int -}}
{{- $window := $lt.windowSamples | default 50 | int -}}
{{- if gt $min $window -}}
{{- fail (printf "controller.config.leadTime.minSamples (%d) must be at most leadTime.windowSamples (%d): use e.g. minSamples: 5, windowSamples: 50" $min $window) -}}
{{- end -}}
{{- $minS := $lt.minSeconds | default 60 | float64 -}}
{{- $maxS := $lt.maxSeconds | default 3600 | float64 -}}
{{- if lt $maxS $minS -}}
{{- fail (printf "controller.config.leadTime.maxSeconds (%v) is below leadTime.minSeconds (%v): use e.g. minSeconds: 60, maxSeconds: 3600" $maxS $minS) -}}
{{- end -}}
{{- $le := $config.leaderElection | default dict -}}
{{- if ne ($le.enabled | toString) "false" -}}
{{- $dur := $le.leaseDurationSeconds | default 15 | int -}}
{{- $grace := $le.renewGraceSeconds | default 5 | int -}}
{{- if ge $grace $dur -}}
{{- fail (printf "controller.config.leaderElection.renewGraceSeconds (%d) must be below leaderElection.leaseDurationSeconds (%d): use e.g. 15 and 5" $grace $dur) -}}
{{- end -}}
{{- end -}}
{{- $names := dict -}}
{{- range $i, $p := $config.pools -}}
{{- if hasKey $names $p.name -}}
{{- fail (printf "controller.config.pools[%d].name (%s) is used by two pools: give each pool its own name" $i $p.name) -}}
{{- end -}}
{{- $_ := set $names $p.name true -}}
{{- $h := $p.headroom | default dict -}}
{{- $hmin := $h.minUsers | default 0 | float64 -}}
{{- $hmax := (hasKey $h "maxUsers" | ternary $h.maxUsers 10000) | float64 -}}
{{- if lt $hmax $hmin -}}
{{- fail (printf "controller.config.pools[%d].headroom.maxUsers (%v) must be at least headroom.minUsers (%v): use e.g. minUsers: 0, maxUsers: 500" $i $hmax $hmin) -}}
{{- end -}}
{{- $required := ((($p.affinity | default dict).nodeAffinity | default dict).requiredDuringSchedulingIgnoredDuringExecution | default dict).nodeSelectorTerms -}}
{{- if not (or $p.nodeSelector $required $p.allNodes) -}}
{{- fail (printf "controller.config.pools[%d].nodeSelector is empty and there is no required node affinity (nor userPool.nodeSelector): every node of the cluster would count as pool %s's; give the user nodes' labels, e.g. nodeSelector: {hub.jupyter.org/node-purpose: user}, or set allNodes: true" $i $p.name) -}}
{{- end -}}
{{- end -}}
{{- range $i, $e := $config.events -}}
{{- if not (hasKey $names $e.pool) -}}
{{- fail (printf "controller.config.events[%d].pool (%s) names no configured pool: use one of %s" $i $e.pool (keys $names | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- range $i, $c := $config.calendars -}}
{{- if not (hasKey $names $c.pool) -}}
{{- fail (printf "controller.config.calendars[%d].pool (%s) names no configured pool: use one of %s" $i $c.pool (keys $names | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
