"""The Kubernetes set (deploy/k8s) as kustomize renders it: replicas that can scale and be drained, probes on
the health service, and every secret a service needs with security on taken from the one shared Secret."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from framevault.auth.startup import _REQUIRED_SECRETS as REQUIRED_SECRETS
from framevault.common.config import env_name
from framevault.common.server import LIVENESS_SERVICE

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SERVICES = {"metadata": 50051, "blob": 50052}
SECRET = "framevault-secrets"


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(out) if doc}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_several_replicas_that_scale_on_cpu_and_survive_drains(
        rendered: dict[tuple[str, str], dict[str, Any]], service: str) -> None:
    name = f"framevault-{service}"
    deployment = rendered[("Deployment", name)]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    autoscaler = rendered[("HorizontalPodAutoscaler", name)]["spec"]
    assert autoscaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert 2 <= autoscaler["minReplicas"] < autoscaler["maxReplicas"]
    assert [m["resource"]["name"] for m in autoscaler["metrics"] if m["type"] == "Resource"] == ["cpu"]
    # Utilization is a share of the request: without one the autoscaler cannot act.
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        assert container["resources"]["requests"]["cpu"]

    budget = rendered[("PodDisruptionBudget", name)]["spec"]
    assert matches(budget["selector"], pod_labels)
    assert 1 <= budget["minAvailable"] < autoscaler["minReplicas"]


@pytest.mark.parametrize("service", SERVICES)
def test_probes_ask_the_health_service(rendered: dict[tuple[str, str], dict[str, Any]], service: str) -> None:
    (container,) = rendered[("Deployment", f"framevault-{service}")]["spec"]["template"]["spec"]["containers"]
    # Exec probes over TLS (deploy/k8s/probe.py): the kubelet's gRPC probes cannot speak TLS.
    probe = ["python", "/etc/framevault/probe/probe.py", str(SERVICES[service])]
    assert container["readinessProbe"]["exec"]["command"] == probe
    assert container["livenessProbe"]["exec"]["command"] == [*probe, LIVENESS_SERVICE]


@pytest.mark.parametrize("service", SERVICES)
def test_every_secret_the_service_needs_comes_from_the_shared_secret(
        rendered: dict[tuple[str, str], dict[str, Any]], service: str) -> None:
    secret_keys = set(rendered[("Secret", SECRET)]["stringData"])
    (container,) = rendered[("Deployment", f"framevault-{service}")]["spec"]["template"]["spec"]["containers"]
    from_secret = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"]
                   if "secretKeyRef" in env.get("valueFrom", {})}
    for setting in REQUIRED_SECRETS[service]:
        variable = env_name(setting)
        # One key of one Secret for every replica of both services: they all sign and verify alike.
        assert from_secret.get(variable) == {"name": SECRET, "key": variable}, variable
        assert variable in secret_keys


@pytest.mark.parametrize("service", SERVICES)
def test_callers_balance_over_every_replica_through_a_headless_service(
        rendered: dict[tuple[str, str], dict[str, Any]], service: str) -> None:
    from framevault.api.transport import parse_target

    pod_labels = rendered[("Deployment", f"framevault-{service}")]["spec"]["template"]["metadata"]["labels"]
    headless = rendered[("Service", f"framevault-{service}-replicas")]["spec"]
    # clusterIP None: the DNS name answers every ready replica's address, not one virtual IP.
    assert headless["clusterIP"] == "None"
    assert all(pod_labels.get(key) == value for key, value in headless["selector"].items())
    assert [port["port"] for port in headless["ports"]] == [SERVICES[service]]
    target = rendered[("ConfigMap", "framevault-config")]["data"][env_name(f"{service}_target")]
    assert target == f"dns:///framevault-{service}-replicas:{SERVICES[service]}"
    assert parse_target(target, tls=True).uri == target
