# syntax=docker/dockerfile:1
# framevault metadata service (gRPC, MongoDB-backed).
# Build from the repository root (the context must be the repo root):
#   docker build -f deploy/docker/metadata.Dockerfile -t framevault-metadata .
# Ignore rules for this context: metadata.Dockerfile.dockerignore (BuildKit).

ARG PYTHON_IMAGE=python:3.11-slim
ARG RUST_IMAGE=rust:1.95-slim

# --- codec: the frame codec (services/codec, Rust) as a wheel -----------------
# The Rust toolchain of the official image, on the Python image the service runs
# on (the wheel links against its Python and C library). build.rs generates the
# prost types from proto/ (protox: no protoc needed).
FROM ${RUST_IMAGE} AS rust
FROM ${PYTHON_IMAGE} AS codec
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
WORKDIR /src
COPY proto/framevault ./proto/framevault
COPY services/codec ./services/codec
RUN pip wheel --no-deps --wheel-dir /wheels ./services/codec

# --- build: install the project and its pinned dependencies into a venv -------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY . .
COPY --from=codec /wheels /wheels
RUN /opt/venv/bin/pip install --find-links /wheels ./clients/python-api "./services[metadata]" \
 && /opt/venv/bin/python -c "import framevault.metadata, framevault_codec, grpc_health.v1.health_pb2"

# --- runtime: venv only, non-root ---------------------------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 framevault \
 && useradd --system --uid 10001 --gid framevault --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin framevault
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FRAMEVAULT_METADATA_ADDRESS=0.0.0.0:50051 \
    FRAMEVAULT_METADATA_METRICS_ADDRESS=0.0.0.0:9451 \
    FRAMEVAULT_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
EXPOSE 50051 9451
# gRPC health check (grpc.health.v1, overall service ""), no grpc_health_probe binary needed.
# The service refuses plaintext unless FRAMEVAULT_ALLOW_PLAINTEXT=true: run the container with
# FRAMEVAULT_TLS_CERT_FILE / _KEY_FILE (and _CLIENT_CA_FILE for mutual TLS) mounted, and the check
# calls it over TLS (localhost must be a name of the certificate) with FRAMEVAULT_TLS_CA_FILE and the
# service's FRAMEVAULT_TLS_CLIENT_* certificate; plaintext only when the service serves plaintext.
# Reports SERVING only once MongoDB is reachable and its indexes are prepared.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; e = os.environ.get; pem = lambda n: open(e(n), 'rb').read() if e(n) else None; target = 'localhost:' + e('FRAMEVAULT_METADATA_ADDRESS', '0.0.0.0:50051').rsplit(':', 1)[1]; channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(pem('FRAMEVAULT_TLS_CA_FILE'), pem('FRAMEVAULT_TLS_CLIENT_KEY_FILE'), pem('FRAMEVAULT_TLS_CLIENT_CERT_FILE'))) if e('FRAMEVAULT_TLS_CERT_FILE') else grpc.insecure_channel(target); r = g.HealthStub(channel).Check(h.HealthCheckRequest(service=''), timeout=4); sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"]
ENTRYPOINT ["python", "-m", "framevault.metadata"]
