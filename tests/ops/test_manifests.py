"""The Kubernetes manifests agree with the image and the settings (the schemas are checked by
`make deploy-check`): probes, ports, user, secrets, settings names, selectors."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def dockerfile_final(keyword: str) -> str:
    """The argument of the final stage's last `keyword` instruction in the Dockerfile."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())  # join continued lines
    final = re.split(r"^FROM\s", text, flags=re.M)[-1]
    found: list[str] = re.findall(rf"^{keyword}\s+(.+)$", final, re.M)
    assert found, f"no {keyword} in the Dockerfile's final stage"
    return found[-1].strip()


def load(*paths: Path) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found[(document["kind"], document["metadata"]["name"])] = document
    return found


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    return load(*sorted(K8S.glob("*.yaml")), *sorted(K8S.glob("*/*.yaml")))


def pod_spec(objects: dict[tuple[str, str], dict[str, Any]], kind: str, name: str) -> Any:
    return objects[(kind, name)]["spec"]["template"]["spec"]


def test_deployment_probes_resources_and_security(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    spec = pod_spec(objects, "Deployment", "hospital-api")
    [container] = spec["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert str(spec["securityContext"]["runAsUser"]) == dockerfile_final("USER").split(":")[0]
    # The port the server listens on (the image's CMD) is the one probed and served.
    port = int(container["args"][container["args"].index("--port") + 1])
    image_cmd = json.loads(dockerfile_final("CMD"))
    assert port == int(image_cmd[image_cmd.index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port
    # PROMETHEUS_MULTIPROC_DIR lives in /tmp: writable although the root file system is not.
    assert {mount["mountPath"] for mount in container["volumeMounts"]} == {"/tmp"}


def test_secrets_come_from_secrets_that_the_example_defines(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for kind, name in (("Deployment", "hospital-api"), ("Job", "hospital-api-migrate")):
        [container] = pod_spec(objects, kind, name)["containers"]
        refs = {
            item["name"]: item["valueFrom"]["secretKeyRef"]
            for item in container["env"]
            if "valueFrom" in item
        }
        assert "DATABASE_URL" in refs
        for ref in refs.values():
            assert ref["key"] in objects[("Secret", ref["name"])]["stringData"]
    [api] = pod_spec(objects, "Deployment", "hospital-api")["containers"]
    assert "SECRET_KEY" in {item["name"] for item in api["env"]}


def test_configmap_names_real_settings(
    objects: dict[tuple[str, str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = objects[("ConfigMap", "hospital-api")]["data"]
    assert data["ENVIRONMENT"] == "production"
    unknown = {key for key in data if key.lower() not in Settings.model_fields}
    assert not unknown
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.web_concurrency == int(data["WEB_CONCURRENCY"])
    assert settings.cors_origins == []
    assert settings.trusted_proxies() == []  # to be set to the ingress controller's range
    assert settings.mfa_required_roles == {"admin"}


def test_migration_job_runs_the_migrate_command(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    spec = pod_spec(objects, "Job", "hospital-api-migrate")
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["args"] == ["migrate"]


def test_service_hpa_and_pdb_select_the_deployment(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = objects[("Deployment", "hospital-api")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = objects[("Service", "hospital-api")]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pdb = objects[("PodDisruptionBudget", "hospital-api")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = objects[("HorizontalPodAutoscaler", "hospital-api")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "hospital-api"
    assert hpa["spec"]["minReplicas"] >= 2  # the PDB can then let one go at a time


def test_compose_runs_migrations_before_the_api_with_production_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    postgres, migrate, api = services["postgres"], services["migrate"], services["api"]
    assert "healthcheck" in postgres
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert migrate["command"] == ["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["command"][0] == "serve"
    for service in (migrate, api):
        assert service["environment"]["ENVIRONMENT"] == "production"
        assert service["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")  # required
        assert "/tmp" in service["tmpfs"][0]  # PROMETHEUS_MULTIPROC_DIR, empty at each start
    # The api publishes its own port: no proxy is believed unless .env names one.
    assert api["environment"]["FORWARDED_ALLOW_IPS"] == "${FORWARDED_ALLOW_IPS:-}"
    assert api["environment"]["MFA_REQUIRED_ROLES"] == "${MFA_REQUIRED_ROLES:-admin}"
