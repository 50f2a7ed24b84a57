"""The production deployment on paper, checked: Kubernetes manifests against the Kubernetes schemas,
the compose file for consistency with itself and with the packages' entry points, and the bus as a trust
boundary: each component on its own broker user with only its own secret, the administrator only where
`klients-bus setup` runs, before any migration."""

from __future__ import annotations

import re
import tomllib

import kubernetes_validate
import pytest
import yaml

from klients_common.bus_setup import BROKER_COMPONENTS
from klients_common.settings import BUS_USER_PREFIX_DEFAULT as DEFAULT_USER_PREFIX
from tests.support.deploy import K8S, k8s_config, k8s_documents
from tests.support.stack import ROOT

COMPOSE = ROOT / "deploy" / "docker-compose.yml"
KLIENTS_COMPONENTS = {"identity", "identity-events", "gateway", "billing", "metering", "notifications"}
MIGRATING = {"identity", "billing", "metering", "notifications"}  # the components with a `migrate` command
ADMIN_SECRET = "klients-rabbitmq"  # RabbitMQ's administrator (and Erlang cookie)


def console_scripts() -> set[str]:
    scripts = set()
    for pyproject in [*ROOT.glob("services/*/pyproject.toml"), ROOT / "gateway" / "pyproject.toml",
                      *ROOT.glob("libs/*/pyproject.toml")]:
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
        for container in containers(doc):
            for item in container.get("env", []):
                if SECRET_NAME.search(item["name"]):
                    assert "valueFrom" in item, f"{doc['metadata']['name']}: {item['name']} is inline"
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) or "@" in str(value):
                assert re.search(r"\$\{[A-Z_]+:\?\}", str(value)), f"{name}: {key} must come from the environment"


# --- the bus as a trust boundary ---------------------------------------------------------------------

def component_of(workload: str) -> str:
    """The broker component a workload runs as (identity's web app and its nameko services share one)."""
    return workload.removesuffix("-events")


def containers(doc) -> list[dict]:
    """A workload's containers in the order they run: init containers first."""
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def secrets_read(container) -> set[str]:
    """The Secrets a container reads, whole or by key."""
    names = {source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source}
    names |= {item["valueFrom"]["secretKeyRef"]["name"] for item in container.get("env", [])
              if "secretKeyRef" in item.get("valueFrom", {})}
    return names


def bus_secrets(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith("klients-bus-") or name == ADMIN_SECRET}


def k8s_env(container) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def k8s_workloads() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] in ("Deployment", "StatefulSet", "Job")}


def example_secrets() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d}


def assert_own_k8s_bus_user(where: str, container, component: str) -> None:
    """The container connects as ``component``'s user, with the password from ``component``'s secret only."""
    prefix = k8s_config().get("BUS_USER_PREFIX", DEFAULT_USER_PREFIX)
    env = k8s_env(container)
    names = list(env)
    assert names.index("AMQP_PASSWORD") < names.index("AMQP_URI"), f"{where}: $(AMQP_PASSWORD) must come first"
    assert env["AMQP_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": f"klients-bus-{component}",
                                                                  "key": "password"}}, where
    assert env["AMQP_URI"]["value"] == f"amqp://{prefix}{component}:$(AMQP_PASSWORD)@rabbitmq:5672/klients", where
    assert bus_secrets(secrets_read(container)) == {f"klients-bus-{component}"}, where


def test_k8s_components_connect_as_their_own_broker_user_with_only_their_own_secret():
    workloads = k8s_workloads()
    for name in KLIENTS_COMPONENTS:
        pod = workloads[name]["spec"]["template"]["spec"]
        assert not any("secret" in volume for volume in pod.get("volumes", [])), name
        (container,) = containers(workloads[name])
        assert_own_k8s_bus_user(name, container, component_of(name))
    assert {component_of(name) for name in KLIENTS_COMPONENTS} == set(BROKER_COMPONENTS)


def test_k8s_uses_no_guest_and_no_shared_bus_credential():
    for name, doc in [*k8s_documents(), *(("secrets.example.yaml", d) for d in example_secrets().values())]:
        text = yaml.safe_dump(doc)
        assert "guest" not in text, f"{name}: {doc['metadata']['name']}"
        if doc["kind"] in ("ConfigMap", "Secret"):
            assert "amqp://" not in text, f"{name}: {doc['metadata']['name']} holds an AMQP URI for everyone"
    users: dict[str, set[str]] = {}  # broker user: the components connecting as it
    for name, doc in k8s_workloads().items():
        for container in containers(doc):
            uri = k8s_env(container).get("AMQP_URI", {}).get("value")
            if uri:
                runs = re.fullmatch(r"klients-([a-z]+) migrate", " ".join(container["command"]))
                users.setdefault(re.match(r"amqp://([^:@/]+):", uri)[1], set()).add(
                    runs[1] if runs else component_of(name))
    prefix = k8s_config().get("BUS_USER_PREFIX", DEFAULT_USER_PREFIX)
    assert users == {prefix + c: {c} for c in BROKER_COMPONENTS}


def test_k8s_admin_credential_reaches_only_rabbitmq_and_the_setup_step():
    readers = {(name, container["name"]) for name, doc in k8s_workloads().items() for container in containers(doc)
               if ADMIN_SECRET in secrets_read(container)}
    assert readers == {("rabbitmq", "rabbitmq"), ("klients-migrate", "bus-setup")}
    shared = example_secrets()["klients-secrets"]["stringData"]
    assert not [key for key in shared if re.search(r"AMQP|RABBITMQ|BUS_", key)], \
        "klients-secrets is loaded whole by every pod: no bus credential may live in it"


def test_k8s_secrets_example_has_what_the_manifests_read():
    examples = example_secrets()
    for doc in examples.values():
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    for component in BROKER_COMPONENTS:
        assert "password" in examples[f"klients-bus-{component}"]["stringData"], component
    for name, doc in k8s_workloads().items():
        for container in containers(doc):
            for secret in secrets_read(container):
                assert secret in examples, f"{name}/{container['name']} reads unknown secret {secret}"
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in examples[ref["name"]]["stringData"], f"{name}: {ref}"


def test_k8s_migrate_job_sets_up_the_bus_before_each_component_migrates_as_itself():
    workloads = k8s_workloads()
    job = workloads["klients-migrate"]
    assert job["kind"] == "Job"
    setup, *migrations = containers(job)
    assert setup["command"] == ["klients-bus", "setup"] and "klients-bus" in console_scripts()
    assert setup in job["spec"]["template"]["spec"]["initContainers"], "setup must finish before any migration"
    env = k8s_env(setup)
    assert {"BUS_MANAGEMENT_URL", "BUS_ADMIN_USER", "BUS_ADMIN_PASSWORD", "BUS_HOST", "BUS_VHOST"} <= set(env)
    assert env["BUS_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == ADMIN_SECRET
    for component in BROKER_COMPONENTS:
        assert env[f"BUS_PASSWORD_{component.upper()}"]["valueFrom"] == {
            "secretKeyRef": {"name": f"klients-bus-{component}", "key": "password"}}, component
    # The administrator is RabbitMQ's own, and setup reaches it where the components do.
    rabbitmq = k8s_env(containers(workloads["rabbitmq"])[0])
    assert env["BUS_ADMIN_USER"]["value"] == rabbitmq["RABBITMQ_DEFAULT_USER"]["value"]
    assert rabbitmq["RABBITMQ_DEFAULT_PASS"]["valueFrom"]["secretKeyRef"]["name"] == ADMIN_SECRET
    service = next(d for _, d in k8s_documents() if d["kind"] == "Service" and d["metadata"]["name"] == "rabbitmq")
    management = re.fullmatch(r"http://rabbitmq:(\d+)", env["BUS_MANAGEMENT_URL"]["value"])
    assert management and int(management[1]) in {port["port"] for port in service["spec"]["ports"]}
    assert env["BUS_HOST"]["value"] == "rabbitmq:5672" and env["BUS_VHOST"]["value"] == "klients"
    migrated = []
    for container in migrations:
        match = re.fullmatch(r"klients-([a-z]+) migrate", " ".join(container["command"]))
        assert match, f"{container['name']} runs {container['command']}"
        migrated.append(match[1])
        assert_own_k8s_bus_user(f"klients-migrate/{container['name']}", container, match[1])
    assert sorted(migrated) == sorted(MIGRATING)
    assert all(f"klients-{component}" in console_scripts() for component in migrated)


def test_rabbitmq_has_the_management_api():
    rabbitmq = k8s_workloads()["rabbitmq"]
    (container,) = containers(rabbitmq)
    assert re.search(r":[\w.]*-management(-alpine)?$", container["image"]), container["image"]
    assert 15672 in {port["containerPort"] for port in container["ports"]}
    config = next(d for _, d in k8s_documents()
                  if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "rabbitmq-config")
    assert "rabbitmq_management" in config["data"]["enabled_plugins"]  # the mounted file replaces the image's
    compose = yaml.safe_load(COMPOSE.read_text())
    assert re.search(r":[\w.]*-management(-alpine)?$", compose["services"]["rabbitmq"]["image"])


COMPOSE_SECRET = re.compile(r"\$\{(BUS_PASSWORD_[A-Z]+|RABBITMQ_[A-Z_]+)")


def compose_uri(component: str) -> str:
    return f"amqp://{DEFAULT_USER_PREFIX}{component}:${{BUS_PASSWORD_{component.upper()}:?}}@rabbitmq:5672/klients"


def test_compose_components_connect_as_their_own_broker_user_with_only_their_own_secret():
    compose = yaml.safe_load(COMPOSE.read_text())
    assert "guest" not in yaml.safe_dump(compose)
    assert "AMQP_URI" not in compose["x-klients"]["environment"], "no AMQP URI shared by every service"
    services = compose["services"]
    for name in KLIENTS_COMPONENTS:
        component = component_of(name)
        assert services[name]["environment"]["AMQP_URI"] == compose_uri(component), name
        assert set(COMPOSE_SECRET.findall(yaml.safe_dump(services[name]))) == {f"BUS_PASSWORD_{component.upper()}"}, \
            name
    admin = {name for name, service in services.items()
             if "RABBITMQ_ADMIN_PASSWORD" in COMPOSE_SECRET.findall(yaml.safe_dump(service))}
    assert admin == {"rabbitmq", "bus-setup"}


def test_compose_sets_up_the_bus_before_each_component_migrates_as_itself():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    setup = services["bus-setup"]
    assert setup["command"] == ["klients-bus", "setup"] and setup["restart"] == "no"
    assert setup["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}
    env = setup["environment"]
    assert env["BUS_ADMIN_USER"] == services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
    assert env["BUS_ADMIN_PASSWORD"] == services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"]
    assert env["BUS_MANAGEMENT_URL"] == "http://rabbitmq:15672"
    assert env["BUS_HOST"] == "rabbitmq:5672" and env["BUS_VHOST"] == "klients"
    for component in BROKER_COMPONENTS:
        key = f"BUS_PASSWORD_{component.upper()}"
        assert env[key] == f"${{{key}:?}}", component
    migrate = services["migrate"]
    assert migrate["depends_on"]["bus-setup"] == {"condition": "service_completed_successfully"}
    assert "AMQP_URI" not in migrate["environment"]
    script = migrate["command"][-1]
    steps = re.findall(r'AMQP_URI="\$\$AMQP_URI_([A-Z]+)" klients-([a-z]+) migrate', script)
    assert len(steps) == script.count(" migrate"), "every migrate runs with its own AMQP_URI"
    assert sorted(component for _, component in steps) == sorted(MIGRATING)
    for variable, component in steps:
        assert variable == component.upper()
        assert migrate["environment"][f"AMQP_URI_{variable}"] == compose_uri(component)
    assert "RABBITMQ_ADMIN_PASSWORD" not in COMPOSE_SECRET.findall(yaml.safe_dump(migrate))


def test_the_retention_job_runs_in_every_deployment():
    """`klients-identity purge` deletes identity's expired rows: a CronJob on Kubernetes, a looping service
    in compose, a background process in `make run`."""
    (job,) = [d for _, d in k8s_documents() if d["kind"] == "CronJob" and d["metadata"]["name"] == "identity-retention"]
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["klients-identity", "purge"] and "klients-identity" in console_scripts()
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    assert not bus_secrets(secrets_read(container)), "the purge needs no bus"
    service = yaml.safe_load(COMPOSE.read_text())["services"]["identity-retention"]
    assert service["command"][:3] == ["klients-identity", "purge", "--every"]
    assert "AMQP_URI" not in service["environment"]
    assert re.search(r"^start identity-retention klients-identity purge --every ",
                     (ROOT / "deploy" / "run.sh").read_text(), re.M)
