"""The deployment files, checked where no container engine runs: the image's build file
(parsed), the compose file against the Compose Specification's JSON schema, and the
Kubernetes manifests against Kubernetes' own JSON schemas, plus what each must say about
Afflux (every service, its port, its probes). The schemas come with the test
dependencies, so nothing is fetched at test time: the compose-spec schema vendored in
check-jsonschema (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, from
github.com/compose-spec/compose-spec) and the Kubernetes schemas shipped in
kubernetes-validate (from the Kubernetes OpenAPI, strict: no unknown field passes)."""

from __future__ import annotations

import glob
import importlib.util
import json
import re
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
CONTAINER_PORT = 8000
"""Every service listens on this port inside its container (the Dockerfile sets it)."""


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "infra" / "compose.yaml").read_text()))


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every resource under infra/k8s but kustomize's own file."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def workloads() -> dict[str, dict[str, Any]]:
    """Component name -> its Deployment (StatefulSet for tracking)."""
    return {doc["metadata"]["name"]: doc for _, doc in manifests()
            if doc["kind"] in ("Deployment", "StatefulSet")}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    [only] = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "Dockerfile"))


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    instructions = list(parser.structure)
    last_from = max(i for i, item in enumerate(instructions) if item["instruction"] == "FROM")
    return instructions[last_from:]


def runs_a_service(command: list[str]) -> str | None:
    """``afflux_tracking`` for ``python -m afflux_tracking`` (also behind ``sh -c``)."""
    found = re.search(r"python -m (afflux_\w+)", " ".join(command))
    return found.group(1) if found else None


# The image's build file


def test_the_image_is_built_in_stages_and_runs_as_a_user_that_is_not_root() -> None:
    parser = dockerfile()
    assert parser.is_multistage
    users = [item["value"] for item in final_stage(parser) if item["instruction"] == "USER"]
    assert users, "the runtime stage names no USER: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_image_installs_exactly_the_locked_dependencies_without_dev_tools() -> None:
    syncs = [item["value"] for item in dockerfile().structure
             if item["instruction"] == "RUN" and "uv sync" in item["value"]]
    assert syncs
    assert all("--frozen" in sync and "--no-dev" in sync for sync in syncs), syncs


def test_the_image_copies_the_metadata_of_every_workspace_member_before_its_dependency_layer() -> None:
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    wanted = {str(Path(path).relative_to(ROOT) / "pyproject.toml")
              for pattern in members for path in glob.glob(str(ROOT / pattern))}
    copied = {item["value"].split()[0] for item in dockerfile().structure
              if item["instruction"] == "COPY" and item["value"].split()[0].endswith("pyproject.toml")}
    assert wanted <= copied, f"the Dockerfile misses {sorted(wanted - copied)}"


def test_the_image_checks_its_health_on_healthz_on_the_port_every_service_listens_on() -> None:
    parser = dockerfile()
    stage = final_stage(parser)
    [check] = [item["value"] for item in stage if item["instruction"] == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{CONTAINER_PORT}/healthz" in check
    env = parser.envs
    assert env["AFFLUX_HOST"] == "0.0.0.0"
    assert {name: env.get(f"AFFLUX_{name.upper()}_PORT") for name in DEFAULT_PORTS} == {
        name: str(CONTAINER_PORT) for name in DEFAULT_PORTS}
    assert runs_a_service(json.loads(parser.cmd)) == "afflux_partners"


# The compose file


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
                        .read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_compose_file_runs_three_kafka_brokers_postgresql_the_topics_and_every_service() -> None:
    services = compose()["services"]
    assert {"kafka-1", "kafka-2", "kafka-3", "postgres", "provision", *DEFAULT_PORTS} <= set(services)
    assert services["provision"]["command"] == ["afflux", "provision"]
    for name, port in DEFAULT_PORTS.items():
        service = services[name]
        assert runs_a_service(service["command"]) == f"afflux_{name}"
        assert service["ports"] == [f"127.0.0.1:{port}:{CONTAINER_PORT}"]
        assert service["depends_on"]["provision"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"].count("kafka-") == 3
        assert service["build"]["context"] == ".." and service["build"]["dockerfile"] == "Dockerfile"


def platform_settings() -> set[str]:
    """What ``afflux run`` gives every service: a deployment must give them too."""
    return set(Platform(Infrastructure("postgresql://db/afflux", "kafka:9092", "test")).env())


def test_the_compose_file_gives_every_service_each_setting_afflux_run_gives_it() -> None:
    environment = compose()["services"]["partners"]["environment"]
    assert platform_settings() - set(environment) == set()


def test_the_kubernetes_settings_and_secret_name_each_setting_afflux_run_gives() -> None:
    named = {key for _, doc in manifests() if doc["kind"] in ("ConfigMap", "Secret")
             for key in {**doc.get("data", {}), **doc.get("stringData", {})}}
    assert platform_settings() - named == set()


def test_every_port_the_compose_file_publishes_is_bound_to_loopback() -> None:
    published = [(name, port) for name, service in compose()["services"].items()
                 for port in service.get("ports", [])]
    assert published
    assert [(name, port) for name, port in published if not str(port).startswith("127.0.0.1:")] == []


def test_every_module_the_deployment_files_run_exists() -> None:
    commands = [service["command"] for service in compose()["services"].values() if "command" in service]
    commands += [container(workload)["command"] for workload in workloads().values()]
    modules = {module for command in commands if (module := runs_a_service(command))}
    assert modules == {f"afflux_{name}" for name in DEFAULT_PORTS}
    assert [module for module in modules if importlib.util.find_spec(module) is None] == []


# The Kubernetes manifests


@pytest.mark.parametrize(("file", "resource"), manifests(),
                         ids=lambda value: value if isinstance(value, str) else value.get("kind", "?"))
def test_each_kubernetes_manifest_passes_the_kubernetes_schema_strictly(
    file: str, resource: dict[str, Any],
) -> None:
    kubernetes_validate.validate(resource, kubernetes_validate.latest_version(), strict=True)


def test_kustomize_applies_every_manifest_but_the_secret_example() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk


def test_every_service_has_one_workload_with_probes_resources_and_its_service_port() -> None:
    found = workloads()
    assert set(found) == set(DEFAULT_PORTS)
    services = {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == "Service"}
    for name, workload in found.items():
        spec = container(workload)
        assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert spec["ports"] == [{"name": "http", "containerPort": CONTAINER_PORT}], name
        assert {"cpu", "memory"} <= set(spec["resources"]["requests"]), name
        assert "memory" in spec["resources"]["limits"], name
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False, name
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"] == labels, name
        service = services[name]["spec"]
        assert service["selector"] == labels, name
        assert service["ports"] == [{"name": "http", "port": DEFAULT_PORTS[name], "targetPort": "http"}], name


def test_every_workload_reads_the_settings_and_secrets_the_manifests_define() -> None:
    defined = {(doc["kind"], doc["metadata"]["name"]) for _, doc in manifests()}
    pods = [workload["spec"]["template"]["spec"] for workload in workloads().values()]
    pods += [doc["spec"]["template"]["spec"] for _, doc in manifests() if doc["kind"] == "Job"]
    for pod in pods:
        [spec] = pod["containers"]
        refs = {("ConfigMap", ref["configMapRef"]["name"]) if "configMapRef" in ref
                else ("Secret", ref["secretRef"]["name"]) for ref in spec["envFrom"]}
        assert refs == {("ConfigMap", "afflux-settings"), ("Secret", "afflux-secrets")}
        assert refs <= defined
        assert pod["securityContext"]["runAsNonRoot"] is True


def test_a_job_provisions_the_topics() -> None:
    [job] = [doc for _, doc in manifests() if doc["kind"] == "Job"]
    [spec] = job["spec"]["template"]["spec"]["containers"]
    assert spec["command"] == ["afflux", "provision"]
