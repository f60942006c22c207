# syntax=docker/dockerfile:1
# The tracer image: a static tracer (with its eBPF programs embedded) on scratch, for
# linux/amd64 and linux/arm64 under one tag:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     -t ghcr.io/kubectl-dentry/tracer:0.1.0 --push .
# (one platform: docker build -t ghcr.io/kubectl-dentry/tracer:0.1.0 .)
# The plugin's archives (linux/amd64, linux/arm64) and krew manifest from the same build:
#   docker build --target plugin --output dist .
# The build stage runs on the builder's own platform and cross-compiles for the target's, with
# the same steps CI runs: `cargo xtask image-root --arch` (and `cargo xtask release` for the
# plugin), so what CI checks is what the image holds.

FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS build
ARG TARGETARCH=amd64
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv file \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# nightly + rust-src and bpf-linker (against a static LLVM from PyPI) for the eBPF programs;
# image-root and release add Debian's arm64 cross gcc when they need it.
RUN cargo xtask setup --toolchain-only
RUN cargo xtask image-root --arch "$TARGETARCH" /rootfs \
 && cargo xtask release --out /out

FROM scratch AS plugin
COPY --from=build /out/ /

FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="dentry-tracer" \
      org.opencontainers.image.description="eBPF tracer of the Linux dentry cache, per container: Prometheus metrics and TSV path traces" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/kubectl-dentry/kubectl-dentry" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=build /rootfs/ /
EXPOSE 9090
ENTRYPOINT ["/tracer"]
