# syntax=docker/dockerfile:1
# framevault web gateway: the built web app and its HTTP API over the metadata and blob services.
# Build from the repository root (the context must be the repo root):
#   docker build -f deploy/docker/gateway.Dockerfile -t framevault-gateway .
# Ignore rules for this context: gateway.Dockerfile.dockerignore (BuildKit).

ARG NODE_IMAGE=node:22-slim
ARG PYTHON_IMAGE=python:3.11-slim

# --- web: the TypeScript web app, built from its lock file ----------------------
FROM ${NODE_IMAGE} AS web
WORKDIR /src/clients/web
COPY clients/web/package.json clients/web/package-lock.json clients/web/.npmrc ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY clients/web/ ./
RUN npm run build

# --- build: install the project and its pinned dependencies into a venv -------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
COPY clients/python-api ./clients/python-api
COPY services ./services
RUN /opt/venv/bin/pip install ./clients/python-api ./services \
 && /opt/venv/bin/python -c "import framevault.gateway.app, uvicorn"

# --- runtime: venv and web app only, non-root ---------------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 framevault \
 && useradd --system --uid 10001 --gid framevault --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin framevault
COPY --from=build /opt/venv /opt/venv
COPY --from=web /src/clients/web/dist /opt/framevault/web
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FRAMEVAULT_GATEWAY_LISTEN_ADDRESS=0.0.0.0:8080 \
    FRAMEVAULT_GATEWAY_STATIC_DIR=/opt/framevault/web \
    FRAMEVAULT_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# Healthy when /api/healthz answers 200: both services answer SERVING through the gateway's channels.
# Over HTTPS (FRAMEVAULT_GATEWAY_TLS_CERT_FILE set) the check trusts FRAMEVAULT_TLS_CA_FILE.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, ssl, sys, urllib.request; e = os.environ.get; tls = bool(e('FRAMEVAULT_GATEWAY_TLS_CERT_FILE')); port = e('FRAMEVAULT_GATEWAY_LISTEN_ADDRESS', '0.0.0.0:8080').rsplit(':', 1)[1]; context = ssl.create_default_context(cafile=e('FRAMEVAULT_TLS_CA_FILE') or None) if tls else None; sys.exit(0 if urllib.request.urlopen(('https' if tls else 'http') + '://localhost:' + port + '/api/healthz', timeout=4, context=context).status == 200 else 1)"]
ENTRYPOINT ["python", "-m", "framevault.gateway"]
