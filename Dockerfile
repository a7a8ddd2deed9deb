# syntax=docker/dockerfile:1
#
# Image of promoter, the daemon that promotes image tags through the GitOps
# environments (charts/promoter deploys it).
#
# The build context is the repository root (the Cargo workspace); .dockerignore
# beside this file keeps target/, .git/ and the venv out of it:
#
#   docker build --build-arg VERSION="0.1.0" --build-arg REVISION="$(git rev-parse HEAD)" -t promoter .
#
# Needs BuildKit (the default builder since Docker 23).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and build artefacts between local builds;
# the binary is copied out of the target cache in the same step, stripped (`install -s`):
# the release profile keeps line tables for backtraces in local runs (113 MB), the image
# needs none of them (21 MB; measured on the same build, docs in README).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p promoter \
    && install -D -s -m 0755 target/release/promoter /out/promoter

FROM debian:bookworm-slim
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="promoter" \
      org.opencontainers.image.description="Promotes container image tags through GitOps environments with GitLab merge requests" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://gitlab.com/acme/calculator"
# Runtime libraries of the binary (`ldd target/release/promoter`): libssl.so.3 and
# libcrypto.so.3 (libssl3: git2's https transport links the system OpenSSL), libz.so.1
# (zlib1g, already in the base image), libgcc_s and libc. libgit2 and libssh2 are
# vendored (static); no git binary is used. ca-certificates: TLS to GitLab and the registry.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/*
# A numeric non-root user (the chart runs it as 10001 with a read-only root file
# system); its home is the state directory (the git mirror), a volume in Kubernetes.
RUN groupadd --system --gid 10001 promoter \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/promoter --no-create-home \
       --shell /usr/sbin/nologin promoter \
    && install -d -m 0750 -o 10001 -g 10001 /var/lib/promoter \
    && install -d -m 0755 /etc/promoter
COPY --from=build /out/promoter /usr/local/bin/promoter
USER 10001:10001
ENV HOME=/var/lib/promoter
WORKDIR /var/lib/promoter
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/promoter"]
CMD ["daemon", "--config", "/etc/promoter/promoter.yaml", "--log-format", "json"]
