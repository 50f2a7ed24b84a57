"""The production deployment on paper, checked: Kubernetes manifests against the Kubernetes schemas,
the compose file for consistency with itself and with the packages' entry points."""

from __future__ import annotations

import re
import tomllib

import kubernetes_validate
import pytest
import yaml

from tests.stack import ROOT

K8S = ROOT / "deploy" / "k8s"
KLIENTS_COMPONENTS = {"identity", "identity-events", "gateway", "billing", "metering", "notifications"}


def k8s_documents():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                yield name, doc


def console_scripts() -> set[str]:
    scripts = set()
    for pyproject in [*ROOT.glob("services/*/pyproject.toml"), ROOT / "gateway" / "pyproject.toml"]:
        scripts |= set(tomllib.loads(pyproject.read_text())["project"].get("scripts", {}))
    return scripts


@pytest.mark.parametrize(("name", "doc"), list(k8s_documents()),
                         ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in k8s_documents()])
def test_manifest_is_valid_kubernetes(name, doc):
    kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_every_component_is_deployed_and_scaled_horizontally():
    workloads = {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] in ("Deployment", "StatefulSet")}
    assert KLIENTS_COMPONENTS | {"rabbitmq", "postgres", "keycloak"} <= set(workloads)
    for name in KLIENTS_COMPONENTS:
        assert workloads[name]["spec"]["replicas"] >= 2, name
        container = workloads[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][0] in console_scripts()
    assert workloads["rabbitmq"]["spec"]["replicas"] == 3


def test_rabbitmq_declares_quorum_queues_by_default():
    config = next(d for _, d in k8s_documents()
                  if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "rabbitmq-config")
    assert re.search(r"^default_queue_type = quorum$", config["data"]["rabbitmq.conf"], re.M)
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    assert "default_queue_type = quorum" in compose["configs"]["rabbitmq-conf"]["content"]


def test_compose_file_is_consistent():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert KLIENTS_COMPONENTS | {"rabbitmq", "postgres", "keycloak", "migrate"} <= set(services)
    for name, service in services.items():
        assert "image" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for config in service.get("configs", []):
            assert config["source"] in compose["configs"]
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"]
    for name in KLIENTS_COMPONENTS:
        assert services[name]["deploy"]["replicas"] >= 2
        assert services[name]["command"][0] in console_scripts()
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


SECRET_NAME = re.compile(r"PASSWORD|SECRET|COOKIE|API_KEY")


def test_secrets_come_from_outside_the_repository():
    for _, doc in k8s_documents():
        assert doc["kind"] != "Secret", "secrets are created out of band, not applied from the repository"
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            for item in container.get("env", []):
                if SECRET_NAME.search(item["name"]):
                    assert "valueFrom" in item, f"{doc['metadata']['name']}: {item['name']} is inline"
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) or "@" in str(value):
                assert re.search(r"\$\{[A-Z_]+:\?\}", str(value)), f"{name}: {key} must come from the environment"
