# syntax=docker/dockerfile:1
# framevault metadata service (gRPC, MongoDB-backed).
# Build from the repository root (the context must be the repo root):
#   docker build -f deploy/docker/metadata.Dockerfile -t framevault-metadata .
# Ignore rules for this context: metadata.Dockerfile.dockerignore (BuildKit).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its pinned dependencies into a venv -------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY . .
RUN /opt/venv/bin/pip install ./clients/python-api ./services \
 && /opt/venv/bin/python -c "import framevault.metadata, grpc_health.v1.health_pb2"

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
# Reports SERVING only once MongoDB is reachable and its indexes are prepared.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; port = os.environ.get('FRAMEVAULT_METADATA_ADDRESS', '0.0.0.0:50051').rsplit(':', 1)[1]; r = g.HealthStub(grpc.insecure_channel('127.0.0.1:' + port)).Check(h.HealthCheckRequest(service=''), timeout=4); sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"]
ENTRYPOINT ["python", "-m", "framevault.metadata"]
