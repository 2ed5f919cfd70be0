"""The traffic role, run by ansible-playbook: defaults give the SEED.md objects; bad input stops it early."""

import copy
import json

import pytest

from tests.fixtures import scenario
from tests.helpers import REPO, failed_task, run_playbook
from tests.rendering.crd_schema import schema_errors

HERE = REPO / "tests" / "rendering"
# No cluster answers on port 1 of loopback: reaching a cluster task would fail differently.
NO_CLUSTER = {"K8S_AUTH_HOST": "https://127.0.0.1:1", "K8S_AUTH_VERIFY_SSL": "false", "K8S_AUTH_API_KEY": "none"}


def render(tmp_path, extra_vars=None):
    out = tmp_path / "objects.json"
    rc, output, stderr = run_playbook(HERE / "render.yml", dict(extra_vars or {}, render_output=str(out)))
    assert rc == 0, (failed_task(output), stderr[-2000:])
    return json.loads(out.read_text())


def test_role_defaults_render_exactly_the_seed_objects(tmp_path):
    objects = render(tmp_path)
    # what the role applies, run by ansible-playbook, is what the scenario loader resolves ...
    assert objects == scenario.objects()
    # ... and, without the collection's ownership labels, exactly the objects of SEED.md
    bare = copy.deepcopy(objects)
    for obj in bare:
        assert obj["metadata"].pop("labels")["app.kubernetes.io/managed-by"] == "meshops.istio"
    assert sorted(bare, key=lambda o: (o["kind"], o["metadata"]["name"])) == sorted(scenario.seed_objects(), key=lambda o: (o["kind"], o["metadata"]["name"]))
    for obj in objects:
        assert schema_errors(obj) == []


def test_the_gateways_come_from_the_gateways_role(tmp_path):
    """Gateways installed in another namespace: the egress DestinationRule follows (once a literal FQDN)."""
    objects = render(tmp_path, {"gateways_namespace": "mesh-gateways"})
    rule = scenario.pick(objects, "DestinationRule", "egressgateway-for-cnn")
    assert rule["spec"]["host"] == "istio-egressgateway.mesh-gateways.svc.cluster.local"
    renamed = scenario.variable("gateways_list")
    renamed[1] = dict(renamed[1], name="edge-out", istio_label="edge-out")
    objects = render(tmp_path, {"gateways_list": renamed})
    assert scenario.pick(objects, "Gateway", "edge-out")["spec"]["selector"] == {"istio": "edge-out"}
    assert scenario.pick(objects, "DestinationRule", "egressgateway-for-cnn")["spec"]["host"] == "edge-out.istio-system.svc.cluster.local"


def test_the_external_host_and_namespace_are_variables(tmp_path):
    objects = render(tmp_path, {"traffic_egress_host": "external.meshops.test", "httpbin_namespace": "demo"})
    assert {o["metadata"]["namespace"] for o in objects} == {"demo"}
    assert scenario.pick(objects, "ServiceEntry", "cnn")["spec"]["hosts"] == ["external.meshops.test"]


def test_a_non_default_inventory_renders_its_routes(tmp_path):
    extra = {
        "traffic_namespace": "shop",
        "traffic_instance": "team-a",
        "traffic_ingress_routes": [
            {
                "name": "web",
                "hosts": ["shop.example.com"],
                "gateway": {"name": "shop", "protocol": "HTTPS", "tls": {"credential_name": "shop-cert"}},
                "http": [
                    {
                        "match": [{"prefix": "/"}],
                        "route": [{"host": "web", "port": 80, "weight": 70}, {"host": "web-next", "port": 80, "weight": 30}],
                        "timeout": "3s",
                    }
                ],
            }
        ],
        "traffic_egress_routes": [],
    }
    objects = render(tmp_path, extra)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [("Gateway", "shop"), ("VirtualService", "web")]
    assert objects[1]["spec"]["http"][0]["route"][1] == {"destination": {"host": "web-next", "port": {"number": 80}}, "weight": 30}
    for obj in objects:
        assert obj["metadata"]["labels"]["meshops.istio/instance"] == "team-a"
        assert schema_errors(obj) == []


BAD = [
    (
        "model",
        {
            "traffic_ingress_routes": [
                {"name": "httpbin", "hosts": ["httpbin.example.com"], "gateway": {"name": "g"}, "http": [{"route": [{"host": "httpbin", "port": 0}]}]}
            ]
        },
        "meshops.istio.traffic : Stop when a route or a setting is invalid (nothing was applied)",
        "traffic_ingress_routes[0] (httpbin): http[0].route[0].port: 0 is not a port number (1-65535)",
    ),
    (
        "argument-spec-type",
        {
            "traffic_ingress_routes": [
                {"name": "httpbin", "hosts": ["h.example.com"], "gateway": {"name": "g", "port": "eighty"}, "http": [{"route": [{"host": "h"}]}]}
            ]
        },
        "meshops.istio.traffic : Validating arguments against arg spec 'main' - Apply Istio traffic objects rendered from a compact data model",
        "port",
    ),
    (
        "argument-spec-required",
        {"traffic_egress_routes": [{"name": "cnn", "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}]},
        "meshops.istio.traffic : Validating arguments against arg spec 'main' - Apply Istio traffic objects rendered from a compact data model",
        "host",
    ),
    (
        "argument-spec-choice",
        {
            "traffic_egress_routes": [
                {"name": "cnn", "host": "edition.cnn.com", "resolution": "MAGIC", "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}
            ]
        },
        "meshops.istio.traffic : Validating arguments against arg spec 'main' - Apply Istio traffic objects rendered from a compact data model",
        "MAGIC",
    ),
]


@pytest.mark.parametrize(("case", "extra", "task", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_fails_before_anything_is_applied(case, extra, task, message):
    rc, output, _stderr = run_playbook(HERE / "apply_role.yml", dict(extra, role_under_test="traffic"), env=NO_CLUSTER)
    assert rc != 0, case
    name, result = failed_task(output)
    assert name == task
    assert message in result.get("msg", ""), result.get("msg")
