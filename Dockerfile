# syntax=docker/dockerfile:1
# The hubpack image: hubpack-scheduler and hubpack-placeholder-ctl, the image the Helm chart
# (charts/hubpack) runs. The release workflow (.github/workflows/release.yml) builds it for
# linux/amd64 and linux/arm64; by hand, from the repository root:
#   docker build --build-arg HUBPACK_GIT_COMMIT=$(git rev-parse --short HEAD) \
#     -t ghcr.io/hubpack/hubpack:0.1.0 .
#
# Base images are pinned by the digest of their multi-arch index; to bump one, resolve the
# tag's digest (`docker buildx imagetools inspect <tag>`) and change tag and digest together.

# Build stage: the workspace's locked dependencies, release profile, both binaries only.
# rust:1.95-slim-bookworm, digest as pinned in github.com/Cyb3rb1ade/PLUR1BUS-Harness,
# Dockerfile (commit 03b63b1).
FROM docker.io/library/rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
# The image has no .git: the commit `--version` prints comes from this argument.
ARG HUBPACK_GIT_COMMIT=unknown
ENV HUBPACK_GIT_COMMIT=${HUBPACK_GIT_COMMIT}
WORKDIR /src
COPY . .
# kube uses rustls + ring (no OpenSSL); ring's build needs only the C compiler the image has.
# Stripped, without debug info, for the image only: the workspace's release profile keeps
# line tables for local profiling.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked \
        -p hubpack-scheduler --bin hubpack-scheduler \
        -p hubpack-placeholder-ctl --bin hubpack-placeholder-ctl \
 && mkdir -p /out \
 && cp target/release/hubpack-scheduler target/release/hubpack-placeholder-ctl /out/

# Runtime: distroless (glibc, CA certificates, no shell, no package manager), user 65532.
# gcr.io/distroless/cc-debian12:nonroot, digest as pinned in
# github.com/Erik-Schuetze/league-of-legends, Dockerfile (commit 0a51e80).
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /out/hubpack-scheduler /out/hubpack-placeholder-ctl /usr/local/bin/
USER 65532:65532
# The chart sets the command per component; this is only a default.
ENTRYPOINT ["/usr/local/bin/hubpack-scheduler"]
