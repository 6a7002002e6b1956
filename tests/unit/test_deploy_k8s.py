"""deploy/k8s as kustomize renders it, offline: every manifest valid (kubernetes-validate for
the built-in kinds, the vendored CRD schema for the RabbitMQ operator's), and what each
service needs to survive a rolling update or a node drain (issue 17).

What this cannot show: that a cluster accepts and runs it (no cluster here)."""
import json

import jsonschema
import kubernetes_validate
import pytest

from tests.support.kustomize import BASE, K8S, PRODUCTION, render

SERVICES = ("leads", "deals", "quotes", "support", "metrics", "notify", "webhooks")
LAYOUTS = {"base": BASE, "production": PRODUCTION}
CRDS = {("rabbitmq.com/v1beta1", "RabbitmqCluster"):
        K8S / "crds" / "rabbitmq.com_v1beta1_rabbitmqcluster.json"}


def strict(schema):
    """A structural schema as the API server applies it: unknown fields are errors (it
    would prune them), except where the schema preserves them."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd_validator(api_version, kind):
    schema = json.loads(CRDS[(api_version, kind)].read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(strict(schema["openAPIV3Schema"]))


def validate(doc):
    key = (doc["apiVersion"], doc["kind"])
    if key in CRDS:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in crd_validator(*key).iter_errors(doc)]
        assert not errors, "\n".join(errors)
    else:
        kubernetes_validate.validate(doc, kubernetes_validate.utils.latest_version(),
                                     strict=True)


def find(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def all_docs():
    return [(layout, doc) for layout, path in LAYOUTS.items() for doc in render(path)]


@pytest.mark.parametrize("layout,doc", all_docs(),
                         ids=lambda v: v if isinstance(v, str) else
                         f"{v['kind']}/{v['metadata']['name']}")
def test_every_rendered_manifest_is_valid(layout, doc):
    validate(doc)


def test_the_crd_schema_finds_a_wrong_cluster():
    cluster = find(render(PRODUCTION), "RabbitmqCluster", "rabbitmq")
    with pytest.raises(AssertionError):
        validate({**cluster, "spec": {**cluster["spec"], "replicas": "three"}})
    with pytest.raises(AssertionError):
        validate({**cluster, "spec": {**cluster["spec"], "replicaz": 3}})


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_deployment_service_hpa_pdb(layout, name):
    docs = render(LAYOUTS[layout])
    deployment = find(docs, "Deployment", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert find(docs, "Service", name)["spec"]["selector"].items() <= labels.items()
    hpa = find(docs, "HorizontalPodAutoscaler", name)
    assert hpa["spec"]["scaleTargetRef"]["name"] == name
    pdb = find(docs, "PodDisruptionBudget", name)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", SERVICES)
def test_probes_drain_and_grace_period(layout, name):
    docs = render(LAYOUTS[layout])
    pod = find(docs, "Deployment", name)["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    def target(probe):
        return probe["httpGet"]["path"], ports.get(probe["httpGet"]["port"])

    port = ports["http"]
    assert target(container["startupProbe"]) == ("/healthz", port)
    assert target(container["livenessProbe"]) == ("/healthz", port)
    assert target(container["readinessProbe"]) == ("/readyz", port)
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"

    (pause,) = [int(a) for a in container["lifecycle"]["preStop"]["exec"]["command"]
                if a.isdigit()]
    config = find(docs, "ConfigMap", "dealflow-config")["data"]
    drain = float(config["SHUTDOWN_DRAIN_SECONDS"]) + float(config["SHUTDOWN_GRACE_SECONDS"])
    assert pod["spec"]["terminationGracePeriodSeconds"] > pause + drain, \
        "the kubelet's SIGKILL must come after the pause, the drain and the flush"


def test_production_runs_clustered_broker_and_database():
    docs = render(PRODUCTION)
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == \
        {"dealflow"}
    assert find(docs, "RabbitmqCluster", "rabbitmq")["spec"]["replicas"] == 3
    mongo = find(docs, "StatefulSet", "mongo")
    assert mongo["spec"]["replicas"] == 3
    assert find(docs, "Service", "mongo")["spec"]["clusterIP"] == "None"
    config = find(docs, "ConfigMap", "dealflow-config")["data"]
    assert config["AMQP_QUEUE_TYPE"] == "quorum"
    assert config["AMQP_HOST"].split(":")[0] == "rabbitmq"  # the operator's client Service
    members = [f"mongo-{i}.{mongo['spec']['serviceName']}:27017" for i in range(3)]
    assert config["MONGO_HOST"].split(",") == members
    for name in SERVICES:
        assert find(docs, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"] >= 2, \
            "one pod per service cannot be drained without an outage"


def test_base_leaves_broker_and_database_to_the_configuration():
    kinds = {d["kind"] for d in render(BASE)}
    assert not kinds & {"RabbitmqCluster", "StatefulSet", "Namespace"}
