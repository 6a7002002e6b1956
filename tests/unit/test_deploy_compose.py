"""Static checks of the deployment files in deploy/.

What is real here: static files only; no Docker engine runs here, and no Kubernetes cluster.
These tests parse deploy/docker-compose.yml, deploy/Dockerfile, the Prometheus and Grafana
configuration and deploy/k8s (its production overlay as kustomize renders it,
tests/support/kustomize.py) with PyYAML (``yaml.safe_load``, which resolves the compose
anchors and ``<<`` merge keys the way Compose does) and check what each of the services
needs: its command, port, environment, health checks and dependencies.

Two checks run more than a parser:
- each compose readiness check (a ``python -c`` urllib one-liner) is executed against a
  local stub HTTP server, so it is shown to pass on 200 and fail on 503 and on a closed port;
- ``promtool check config`` validates both Prometheus files (Debian's ``prometheus`` package
  provides promtool; `make test` installs it, so a missing promtool is a failure).

Schemas, without a daemon: the compose file against the Compose Specification's JSON
schema (as check-jsonschema vendors it), every Kubernetes manifest with kubernetes-validate
(strict, newest API version); the operator resources in tests/unit/test_deploy_k8s.py.

What they cannot show: that the image builds, or that the containers start.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.kustomize import PRODUCTION, render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"
K8S_DIR = DEPLOY / "k8s"

APP_PORTS = {"leads": 8001, "deals": 8002, "quotes": 8003, "support": 8004, "metrics": 8005,
             "notify": 8006, "webhooks": 8007}
APP_SERVICES = tuple(APP_PORTS)
INFRA_SERVICES = ("mongo", "rabbitmq", "prometheus", "grafana", "mailpit")

# Prometheus config file -> how it addresses a service (compose DNS name or loopback).
PROMETHEUS_CONFIGS = {"prometheus.yml": "{name}", "prometheus.local.yml": "127.0.0.1"}

GRAFANA_TELEMETRY_OFF = (
    "GF_ANALYTICS_REPORTING_ENABLED",
    "GF_ANALYTICS_CHECK_FOR_UPDATES",
    "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES",
    "GF_NEWS_NEWS_FEED_ENABLED",
)

READYZ_URL = re.compile(r"http://(?:127\.0\.0\.1|localhost):(\d+)/readyz\b")


# --------------------------------------------------------------------------- helpers


class _PlainLoader(yaml.SafeLoader):
    """yaml.SafeLoader without the `${VAR:default}` resolver nameko's config loader adds
    to it process-wide (kit.config): compose's own `${VAR:?...}` must stay as written."""


def _plain_loader():
    _PlainLoader.yaml_implicit_resolvers = {
        key: [r for r in resolvers if r[0] not in ("!env_var", "!raw_env_var")]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return _PlainLoader


def _load_yaml(path: Path):
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_plain_loader())


def _text(value) -> str:
    """A compose command or healthcheck test, list or string form, as one string."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(part) for part in value)
    return str(value)


def _env(service: dict) -> dict[str, str]:
    """A compose `environment`, mapping or list form, as a dict of strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _ports(service: dict) -> list[str]:
    """Published ports as 'host_ip:published:target' strings (short or long syntax)."""
    result = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            result.append(f"{port.get('host_ip', '')}:{port['published']}:{port['target']}")
        else:
            result.append(str(port))
    return result


def _bind_mounts(service: dict) -> list[tuple[str, str]]:
    """(host path, container path) for each bind mount; named volumes are left out."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/", "~")):
            mounts.append((source, target))
    return mounts


def _host_path(service: dict, container_path: str) -> Path | None:
    """Where a path inside the container comes from in the repo, through its bind mounts."""
    for source, target in _bind_mounts(service):
        target = target.rstrip("/")
        if container_path == target or container_path.startswith(target + "/"):
            return (DEPLOY / source / container_path[len(target) :].lstrip("/")).resolve()
    return None


def _image_tag(image: str) -> str:
    """The tag of an image reference ('' when none); a registry port is not a tag."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    joined: list[str] = []
    buffer = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        joined.append(buffer + line)
        buffer = ""
    if buffer:
        joined.append(buffer)
    result = []
    for line in joined:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in _dockerfile_instructions():
        if instruction != "ENV":
            continue
        parts = shlex.split(args)
        if parts and "=" not in parts[0]:  # legacy form: ENV KEY value
            env[parts[0]] = " ".join(parts[1:])
            continue
        for part in parts:
            key, _, value = part.partition("=")
            env[key] = value
    return env


def _k8s_docs() -> list[dict]:
    """The production overlay as kustomize renders it (base, infra and its patches)."""
    return render(PRODUCTION)


# custom resources: validated against their vendored CRD schemas (test_deploy_k8s.py)
CUSTOM_KINDS = ("RabbitmqCluster",)


def _k8s_find(kind: str, name: str) -> dict:
    found = [
        doc
        for doc in _k8s_docs()
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name
    ]
    assert len(found) == 1, f"expected exactly one {kind} named {name!r}, found {len(found)}"
    return found[0]


class _StubReadyz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # the name http.server calls
        code = self.status if self.path == "/readyz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # keep pytest output clean
        pass


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


# --------------------------------------------------------------------------- compose


def test_compose_has_all_nine_services(services):
    missing = set(APP_SERVICES + INFRA_SERVICES) - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_command(services, name):
    command = _text(services[name]["command"])
    assert "nameko run" in command
    assert f"--config services/{name}/config.yml" in command
    assert command.split()[-1] == _service_target(name)


def _service_target(name):
    """`<name>.service:<Name>Service`: a bare module makes nameko start every class in it
    that has entrypoints, kit.ops.Operational included, which has no name (it exits)."""
    return f"{name}.service:{name.capitalize()}Service"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_command_names_one_service_nameko_can_start(services, name):
    from nameko.cli.run import import_service

    found = import_service(_text(services[name]["command"]).split()[-1])
    assert [cls.name for cls in found] == [name]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_port_published_on_loopback(services, name):
    port = APP_PORTS[name]
    assert f"127.0.0.1:{port}:{port}" in _ports(services[name])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_environment(services, name):
    env = _env(services[name])
    secret = rf"\$\{{(RABBITMQ|MONGO)_{name.upper()}_PASSWORD:\?[^}}]+\}}"
    assert re.fullmatch(rf"amqp://{name}:{secret}@rabbitmq:5672/", env.get("AMQP_URI", "")), env
    assert re.fullmatch(rf"mongodb://{name}:{secret}@mongo:27017/{name}\?authSource={name}",
                        env.get("MONGO_URI", "")), env
    assert env.get("MONGO_DATABASE") == name
    assert env.get("WEB_SERVER_ADDRESS") == f"0.0.0.0:{APP_PORTS[name]}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_healthcheck_hits_readyz_on_its_port(services, name):
    test = services[name]["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] == "CMD", test
    assert test[1:3] == ["python", "-c"], "the image has no curl: use python urllib"
    assert "urllib" in test[3]
    assert [int(port) for port in READYZ_URL.findall(test[3])] == [APP_PORTS[name]]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_healthcheck_script_really_checks(services, name):
    """Run the healthcheck one-liner against a stub: 0 on 200, non-zero on 503 or no server."""

    def run(script: str) -> int:
        return subprocess.run(
            [sys.executable, "-c", script], check=False, capture_output=True, timeout=30
        ).returncode

    code = services[name]["healthcheck"]["test"][3]
    handler = type("Handler", (_StubReadyz,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stub_code, count = re.subn(
            rf":{APP_PORTS[name]}/readyz", f":{server.server_port}/readyz", code
        )
        assert count == 1
        assert run(stub_code) == 0
        handler.status = 503
        assert run(stub_code) != 0
    finally:
        server.shutdown()
        server.server_close()
    assert run(stub_code) != 0, "must fail when nothing listens"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_mongo_and_rabbitmq(services, name):
    depends_on = services[name]["depends_on"]
    assert isinstance(depends_on, dict), "use the long form to state the condition"
    for dependency in ("mongo", "rabbitmq"):
        assert depends_on[dependency]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_built_from_the_one_image(services, name):
    service = services[name]
    assert service["restart"] == "unless-stopped"
    build = service["build"]
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT
    assert build["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE
    images = {services[other]["image"] for other in APP_SERVICES}
    assert len(images) == 1, f"the five services must share one image: {images}"


def test_mongo_and_rabbitmq_healthchecks(services):
    mongo = _text(services["mongo"]["healthcheck"]["test"])
    assert "mongosh" in mongo and "ping" in mongo
    rabbitmq = _text(services["rabbitmq"]["healthcheck"]["test"])
    assert "rabbitmq-diagnostics" in rabbitmq and "ping" in rabbitmq


def test_rabbitmq_ports_and_user(services):
    rabbitmq = services["rabbitmq"]
    ports = _ports(rabbitmq)
    assert "127.0.0.1:5672:5672" in ports
    assert "127.0.0.1:15672:15672" in ports
    env = _env(rabbitmq)
    assert env.get("RABBITMQ_DEFAULT_USER") and env.get("RABBITMQ_DEFAULT_PASS")


def test_every_published_port_is_bound_to_loopback(services):
    for name, service in services.items():
        for port in _ports(service):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_grafana_telemetry_is_off(services):
    env = _env(services["grafana"])
    for key in GRAFANA_TELEMETRY_OFF:
        assert env.get(key) == "false", f"grafana: {key} must be 'false', is {env.get(key)!r}"


def test_prometheus_and_grafana_dependencies(services):
    assert set(APP_SERVICES) <= set(services["prometheus"]["depends_on"])
    assert "prometheus" in services["grafana"]["depends_on"]


def test_prometheus_uses_the_mounted_config(services):
    prometheus = services["prometheus"]
    flags = [arg for arg in prometheus["command"] if arg.startswith("--config.file=")]
    assert len(flags) == 1
    host_file = _host_path(prometheus, flags[0].split("=", 1)[1])
    assert host_file == PROMETHEUS_DIR / "prometheus.yml"
    # rule_files are relative to the config: the rules directory must be inside the mount.
    assert _host_path(prometheus, "/etc/prometheus/rules") == PROMETHEUS_DIR / "rules"


def test_grafana_mounts_provisioning_and_dashboards(services):
    grafana = services["grafana"]
    assert _host_path(grafana, "/etc/grafana/provisioning") == GRAFANA_DIR / "provisioning"
    assert _host_path(grafana, "/var/lib/grafana/dashboards") == GRAFANA_DIR / "dashboards"


def test_every_bind_mounted_path_exists(services):
    checked = 0
    for name, service in services.items():
        for source, _target in _bind_mounts(service):
            path = (DEPLOY / source).resolve()
            assert path.exists(), f"{name} mounts {source}, which is not in the repo"
            checked += 1
    assert checked >= 3  # prometheus/, grafana/provisioning, grafana/dashboards


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source!r}"


def test_no_image_uses_latest_or_no_tag(services):
    images = [service["image"] for service in services.values() if "image" in service]
    images += [
        container["image"]
        for doc in _k8s_docs()
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]
    images += [args.split()[0] for instr, args in _dockerfile_instructions() if instr == "FROM"]
    assert len(images) >= len(services)
    for image in images:
        tag = _image_tag(image)
        assert tag and tag != "latest", f"image {image!r} must be pinned to a version"


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_base_requirements_and_user():
    instructions = _dockerfile_instructions()
    froms = [args for instr, args in instructions if instr == "FROM"]
    assert froms and froms[-1].split()[0].startswith("python:3.11-slim")
    runs = " ".join(args for instr, args in instructions if instr == "RUN")
    assert re.search(r"pip install (?=.*--no-cache-dir)(?=.*-r requirements\.txt)", runs)
    copies = [args.split() for instr, args in instructions if instr == "COPY"]
    assert any(parts[0] == "requirements.txt" for parts in copies)
    assert any(parts[0].rstrip("/") == "services" for parts in copies)
    users = [args for instr, args in instructions if instr == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert any(instr == "CMD" for instr, _ in instructions)


def test_dockerfile_ships_the_services_compiled():
    """The code is read-only to the service user: bytecode not compiled into the image is
    compiled again by every start (issue 13: start ≤ 2 × a bare nameko service's)."""
    instructions = _dockerfile_instructions()
    copied = next(i for i, (instr, args) in enumerate(instructions)
                  if instr == "COPY" and args.split()[0].rstrip("/") == "services")
    assert any(instr == "RUN" and re.search(r"python -m compileall .*\bservices\b", args)
               for instr, args in instructions[copied:])


def test_dockerfile_environment():
    env = _dockerfile_env()
    assert env.get("PYTHONPATH") == "/app/services"
    assert env.get("EVENTLET_NO_GREENDNS") == "yes"
    assert env.get("PYTHONUNBUFFERED") == "1"


# --------------------------------------------------------------------------- Prometheus


@pytest.mark.parametrize("config_name", sorted(PROMETHEUS_CONFIGS))
@pytest.mark.parametrize("name", APP_SERVICES)
def test_prometheus_scrapes_service(config_name, name):
    config = _load_yaml(PROMETHEUS_DIR / config_name)
    host = PROMETHEUS_CONFIGS[config_name].format(name=name)
    expected = f"{host}:{APP_PORTS[name]}"
    jobs = [
        job
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        if expected in static.get("targets", [])
        and static.get("labels", {}).get("service", job["job_name"]) == name
    ]
    assert len(jobs) == 1, f"{config_name}: {expected} (service={name}) scraped {len(jobs)} times"
    assert jobs[0].get("metrics_path", "/metrics") == "/metrics"


@pytest.mark.parametrize("config_name", sorted(PROMETHEUS_CONFIGS))
def test_prometheus_globals_and_rules(config_name):
    config = _load_yaml(PROMETHEUS_DIR / config_name)
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.yml"]
    assert (PROMETHEUS_DIR / "rules").is_dir()


@pytest.mark.parametrize("config_name", sorted(PROMETHEUS_CONFIGS))
def test_promtool_accepts_config(config_name):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make deps` installs Debian's prometheus package"
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_DIR / config_name)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- Grafana


def test_grafana_datasource():
    config = _load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    (datasource,) = [ds for ds in config["datasources"] if ds["name"] == "Prometheus"]
    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"


def test_grafana_dashboard_provider_reads_the_mounted_dashboards(services):
    config = _load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dealflow.yml")
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    assert path == "/var/lib/grafana/dashboards"
    assert _host_path(services["grafana"], path) == GRAFANA_DIR / "dashboards"


# --------------------------------------------------------------------------- Kubernetes


def test_k8s_configmap_has_no_credentials():
    data = _k8s_find("ConfigMap", "dealflow-config")["data"]
    assert data["AMQP_HOST"] and data["MONGO_HOST"]
    assert "AMQP_URI" not in data and "MONGO_URI" not in data
    assert not any("@" in str(value) for value in data.values())


@pytest.mark.parametrize("name", APP_SERVICES)
def test_k8s_deployment(name):
    deployment = _k8s_find("Deployment", name)
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]

    command = _text(container.get("command", []) + container.get("args", []))
    assert f"nameko run --config services/{name}/config.yml {_service_target(name)}" in command

    port_names = {p.get("name"): p["containerPort"] for p in container["ports"]}
    assert APP_PORTS[name] in port_names.values()

    def probe_target(probe: dict) -> tuple[str, int]:
        get = probe["httpGet"]
        return get["path"], port_names.get(get["port"], get["port"])

    assert probe_target(container["livenessProbe"]) == ("/healthz", APP_PORTS[name])
    assert probe_target(container["readinessProbe"]) == ("/readyz", APP_PORTS[name])

    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])

    refs = [src["configMapRef"]["name"] for src in container["envFrom"] if "configMapRef" in src]
    assert refs == ["dealflow-config"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MONGO_DATABASE"] == name
    assert env["WEB_SERVER_ADDRESS"] == f"0.0.0.0:{APP_PORTS[name]}"

    security = pod["spec"].get("securityContext", {})
    assert security.get("runAsNonRoot") is True


@pytest.mark.parametrize("name", APP_SERVICES)
def test_k8s_service_selects_the_deployment(name):
    deployment = _k8s_find("Deployment", name)
    service = _k8s_find("Service", name)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {p.get("name"): p["containerPort"] for p in container["ports"]}
    targets = [
        port_names.get(p.get("targetPort", p["port"]), p.get("targetPort", p["port"]))
        for p in service["spec"]["ports"]
    ]
    assert APP_PORTS[name] in targets


@pytest.mark.parametrize("name", APP_SERVICES)
def test_k8s_hpa_targets_the_deployment(name):
    hpa = _k8s_find("HorizontalPodAutoscaler", name)
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", name)
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (cpu,) = [
        metric["resource"]
        for metric in hpa["spec"]["metrics"]
        if metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    ]
    assert cpu["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert "replicas" not in _k8s_find("Deployment", name)["spec"], "the HPA owns replicas"


# --------------------------------------------------------------------------- least privilege

COMPOSE_VAR = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?+])?([^}]*)\}")
MONGO_USERS = DEPLOY / "mongo" / "users.js"


def test_no_secret_has_a_default_in_compose():
    """Every password, user and secret variable must be given: `${X:?...}`, never `:-`."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    secrets = [(name, op) for name, op, _ in COMPOSE_VAR.findall(text)
               # a public key is not a secret: its path may default to the local one
               if re.search(r"PASS|SECRET|TOKEN|KEY", name) and "PUBLIC_KEY" not in name]
    assert secrets
    assert all(op == ":?" for _, op in secrets), [n for n, op in secrets if op != ":?"]


def test_no_guest_and_no_literal_credentials_outside_local_development():
    k8s_files = sorted(K8S_DIR.rglob("*.yaml"))
    assert k8s_files
    for path, text in [(COMPOSE_FILE, COMPOSE_FILE.read_text(encoding="utf-8")),
                       (K8S_DIR, "\n".join(p.read_text(encoding="utf-8") for p in k8s_files))]:
        assert "guest:" not in text and "guest@" not in text, path
        # a password is a variable (${X:?...}, $(X)) or a placeholder (<password>)
        assert not re.search(r"://[^:/@$\s<]+:[^$@\s(<]+@", text), f"{path}: a literal password"
        assert "--delete-guest" in text, f"{path} must remove guest"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_creates_each_service_s_users(services, name):
    users = services["rabbitmq-users"]
    assert name in users["command"][users["command"].index("--services"):]
    assert f"RABBITMQ_{name.upper()}_PASSWORD" in _env(users)
    assert services["rabbitmq-users"]["depends_on"]["rabbitmq"]["condition"] == \
        "service_healthy"
    assert services[name]["depends_on"]["rabbitmq-users"]["condition"] == \
        "service_completed_successfully"
    mongo = _env(services["mongo"])
    assert name in mongo["MONGO_SERVICE_USERS"].split()
    assert f"MONGO_{name.upper()}_PASSWORD" in mongo
    assert _host_path(services["mongo"], "/docker-entrypoint-initdb.d/10-users.js") == \
        MONGO_USERS


def test_mongo_users_are_limited_to_their_own_database():
    script = MONGO_USERS.read_text(encoding="utf-8")
    assert re.search(r'roles = \[\{ role: "readWrite", db: service \}\]', script)
    assert "getSiblingDB(service)" in script
    assert "root" not in script and "AnyDatabase" not in script


@pytest.mark.parametrize("name", APP_SERVICES)
def test_k8s_deployment_connects_as_its_own_users(name):
    (container,) = _k8s_find("Deployment", name)["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    for var, key in (("RABBITMQ_PASSWORD", "rabbitmq-password"),
                     ("MONGO_PASSWORD", "mongo-password")):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": f"{name}-credentials",
                                                          "key": key}
    assert env["AMQP_URI"]["value"] == f"amqp://{name}:$(RABBITMQ_PASSWORD)@$(AMQP_HOST)/"
    assert env["MONGO_URI"]["value"] == (
        f"mongodb://{name}:$(MONGO_PASSWORD)@$(MONGO_HOST)/{name}?authSource={name}")
    names = list(env)
    assert names.index("RABBITMQ_PASSWORD") < names.index("AMQP_URI")  # $(VAR) order
    assert names.index("MONGO_PASSWORD") < names.index("MONGO_URI")


def test_k8s_access_job_creates_every_service_s_users():
    job = _k8s_find("Job", "dealflow-access")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in job["containers"]}
    rabbit, mongo = containers["rabbitmq-users"], containers["mongo-users"]
    assert "--delete-guest" in rabbit["command"]
    rabbit_env = {e["name"] for e in rabbit["env"]}
    mongo_env = {e["name"]: e for e in mongo["env"]}
    for name in APP_SERVICES:
        assert name in rabbit["command"]
        assert f"RABBITMQ_{name.upper()}_PASSWORD" in rabbit_env
        assert mongo_env[f"MONGO_{name.upper()}_PASSWORD"]["valueFrom"]["secretKeyRef"][
            "name"] == f"{name}-credentials"
        assert name in mongo_env["MONGO_SERVICE_USERS"]["value"].split()
    assert job["securityContext"]["runAsNonRoot"] is True


def test_k8s_mongo_users_script_is_the_repository_s():
    data = _k8s_find("ConfigMap", "dealflow-mongo-users")["data"]
    assert data["users.js"] == MONGO_USERS.read_text(encoding="utf-8")


def test_k8s_declares_no_secret_values():
    assert not [doc for doc in _k8s_docs() if doc["kind"] == "Secret"], \
        "Secrets are created by the operator, never committed"


# --------------------------------------------------------------------------- schemas


def _compose_spec():
    """The Compose Specification's JSON schema as check-jsonschema vendors it (no network)."""
    from importlib.resources import files

    text = (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text(
        encoding="utf-8")
    return json.loads(text)


def test_compose_file_follows_the_compose_spec(compose):
    schema = _compose_spec()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)


def test_the_compose_spec_check_finds_a_wrong_file(compose):
    schema = _compose_spec()
    wrong = {**compose, "services": {**compose["services"],
                                     "leads": {**compose["services"]["leads"], "restart": 5}}}
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(wrong))


@pytest.mark.parametrize("doc", [d for d in _k8s_docs() if d["kind"] not in CUSTOM_KINDS],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_k8s_manifest_is_valid_kubernetes(doc):
    """kubernetes-validate, strict (no unknown fields), against its newest API schemas."""
    kubernetes_validate.validate(doc, kubernetes_validate.utils.latest_version(), strict=True)


def test_kubernetes_validate_finds_a_wrong_manifest():
    deployment = _k8s_find("Deployment", "leads")
    wrong = {**deployment, "spec": {**deployment["spec"], "replicaz": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, kubernetes_validate.utils.latest_version(),
                                     strict=True)
