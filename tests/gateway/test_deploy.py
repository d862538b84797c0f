"""The gateway in the Kubernetes set (deploy/k8s) as kustomize renders it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def test_the_gateway_deployment_gates_traffic_on_its_health_and_shares_one_session_secret() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    rendered = {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(out) if doc}
    deployment = rendered[("Deployment", "framevault-gateway")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/api/healthz", "port": "http"}
    env = {item["name"]: item for item in container["env"]}
    assert env["FRAMEVAULT_GATEWAY_SESSION_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "framevault-gateway", "key": "FRAMEVAULT_GATEWAY_SESSION_SECRET"}
    assert "FRAMEVAULT_GATEWAY_SESSION_SECRET" in rendered[("Secret", "framevault-gateway")]["stringData"]
    assert deployment["spec"]["replicas"] >= 2
    service = rendered[("Service", "framevault-gateway")]["spec"]
    assert service["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "appProtocol": "http"}]


def test_compose_runs_the_gateway_after_both_services_with_its_own_secret() -> None:
    compose = yaml.safe_load((K8S.parent / "compose.yaml").read_text())
    gateway = compose["services"]["gateway"]
    assert gateway["build"]["dockerfile"] == "deploy/docker/gateway.Dockerfile"
    env = gateway["environment"]
    assert env["FRAMEVAULT_GATEWAY_SESSION_SECRET"].startswith("${FRAMEVAULT_GATEWAY_SESSION_SECRET:?")
    assert (env["FRAMEVAULT_METADATA_TARGET"], env["FRAMEVAULT_BLOB_TARGET"]) == ("metadata:50051", "blob:50052")
    assert env["FRAMEVAULT_TLS_CLIENT_CERT_FILE"].startswith("/etc/framevault/tls/")
    assert gateway["depends_on"] == {"metadata": {"condition": "service_healthy"},
                                     "blob": {"condition": "service_healthy"}}
    assert gateway["ports"] == ["127.0.0.1:8080:8080"]
    # The browser opens the download URLs the gateway hands out: they name MinIO as the host publishes it.
    assert "127.0.0.1:9000" in compose["services"]["blob"]["environment"]["FRAMEVAULT_S3_PUBLIC_ENDPOINT"]
