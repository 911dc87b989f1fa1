# syntax=docker/dockerfile:1
# The hubpack image: hubpack-scheduler and hubpack-placeholder-ctl, the image the Helm chart
# (charts/hubpack) runs. Build from the repository root:
#   docker build -t ghcr.io/hubpack/hubpack:0.1.0 .
# Build stage: the workspace's locked dependencies, release profile, both binaries only.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# kube uses rustls + ring (no OpenSSL); ring's build needs only the C compiler the image has.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p hubpack-scheduler --bin hubpack-scheduler \
        -p hubpack-placeholder-ctl --bin hubpack-placeholder-ctl \
 && mkdir -p /out \
 && cp target/release/hubpack-scheduler target/release/hubpack-placeholder-ctl /out/

# Runtime: distroless (glibc, CA certificates, no shell, no package manager), user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/hubpack-scheduler /out/hubpack-placeholder-ctl /usr/local/bin/
USER 65532:65532
# The chart sets the command per component; this is only a default.
ENTRYPOINT ["/usr/local/bin/hubpack-scheduler"]
