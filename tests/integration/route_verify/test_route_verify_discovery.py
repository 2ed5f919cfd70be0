"""Gateway address discovery and cluster reads through a real kube-apiserver (etcd on loopback).

The gateway Services point at the test Envoy: a NodePort Service whose node ports are Envoy's
listener ports on a Node with InternalIP 127.0.0.1, and a LoadBalancer Service whose ingress
IP is 127.0.0.1 and whose port is Envoy's. Istio's CRDs are stood in for by schemaless CRDs of
the same group, version and kinds, so the SEED.md objects can be stored and read back.
"""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient

from ansible_collections.meshops.istio.plugins.modules import route_explain, route_verify
from meshops_dev.local import wait_for
from tests.fixtures import scenario

pytestmark = [pytest.mark.envoy, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

SEED_OBJECTS = scenario.mesh_objects("default")
ISTIO_KINDS = {"Gateway": "gateways", "VirtualService": "virtualservices", "ServiceEntry": "serviceentries", "DestinationRule": "destinationrules"}


def crd(kind, plural):
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.networking.istio.io"},
        "spec": {
            "group": "networking.istio.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": kind + "List"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
            ],
        },
    }


def service(name, ns, svc_type, ports, selector=None):
    spec = {"type": svc_type, "selector": selector or {"istio": "ingressgateway"}, "ports": ports}
    if svc_type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = False
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


@pytest.fixture(scope="module")
def cluster(apiserver, gateway):
    """The API server with gateway Services, a Node, Istio-like CRDs and the SEED.md objects."""
    api = apiserver.client()
    dyn = DynamicClient(api)
    core = k8s.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "istio-system"}})
    wait_for(lambda: core.read_namespace("default") is not None, "default namespace")
    http_port, https_port = gateway.ports["http"], gateway.ports["https"]
    core.create_node({"metadata": {"name": "node-a"}})
    core.patch_node_status("node-a", {"status": {"addresses": [{"type": "Hostname", "address": "node-a"}, {"type": "InternalIP", "address": "127.0.0.1"}]}})
    core.create_namespaced_service(
        "istio-system",
        service(
            "istio-ingressgateway",
            "istio-system",
            "NodePort",
            [
                {"name": "http2", "port": 80, "targetPort": 8080, "nodePort": http_port},
                {"name": "https", "port": 443, "targetPort": 8443, "nodePort": https_port},
            ],
        ),
    )
    core.create_namespaced_service("istio-system", service("lb-gateway", "istio-system", "LoadBalancer", [{"name": "http2", "port": http_port}]))
    core.patch_namespaced_service_status("lb-gateway", "istio-system", {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}})
    core.create_namespaced_service("istio-system", service("internal", "istio-system", "ClusterIP", [{"name": "http", "port": 80}]))
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    for kind, plural in ISTIO_KINDS.items():
        crds.create(body=crd(kind, plural))
    for plural in ISTIO_KINDS.values():
        wait_for(lambda p=plural: _established(crds.get(name=f"{p}.networking.istio.io")), f"CRD {plural}", timeout=60)
    for obj in SEED_OBJECTS:
        ns = obj["metadata"]["namespace"]
        if obj["kind"] == "Service" and obj["metadata"]["name"] == "istio-ingressgateway":
            continue  # the NodePort one above stands in for it
        wait_for(lambda o=obj: _create(dyn, o), f"create {obj['kind']} {obj['metadata']['name']}", timeout=60, interval=0.5)
        assert ns
    return apiserver


def _established(obj):
    return any(c["type"] == "Established" and c["status"] == "True" for c in (obj.to_dict().get("status") or {}).get("conditions") or [])


def _create(dyn, obj):
    """Create an object (retried until discovery serves its kind)."""
    dyn.resources.invalidate_cache()
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    resource.create(body=obj, namespace=obj["metadata"]["namespace"])
    return True


@pytest.fixture
def run(capsys):
    def call(main, args):
        with patch_module_args(args), pytest.raises(SystemExit) as exc:
            main()
        return exc.value.code, json.loads(capsys.readouterr().out)

    return call


REFERENCE = {"host": "httpbin.example.com", "path": "/status/200", "expect": {"status": 200, "headers": {"server": "istio-envoy"}}}


def test_node_port_discovery(cluster, gateway, pki, run):
    probes = [REFERENCE, dict(REFERENCE, name="https", scheme="https", tls={"ca_path": str(pki.ca_path)})]
    rc, result = run(route_verify.main, dict(cluster.auth(), gateway_service={"name": "istio-ingressgateway", "namespace": "istio-system"}, probes=probes))
    assert rc == 0, result
    assert result["gateway"]["addresses"] == {"http": gateway.address("http"), "https": gateway.address("https")}
    assert result["gateway"]["selector"] == {"istio": "ingressgateway"}
    assert result["gateway"]["details"]["http"] == {
        "address": gateway.address("http"),
        "source": "nodeport",
        "service_port": 80,
        "node_port": gateway.ports["http"],
    }
    assert [p["address"] for p in result["probes"]] == [gateway.address("http"), gateway.address("https")]


def test_node_port_with_a_node_address_override(cluster, gateway, run):
    args = dict(
        cluster.auth(), gateway_service={"name": "istio-ingressgateway", "namespace": "istio-system", "node_address": "127.0.0.1", "http_port": "http2"}
    )
    rc, result = run(route_verify.main, dict(args, probes=[REFERENCE]))
    assert rc == 0, result
    assert result["gateway"]["addresses"]["http"] == gateway.address("http")


def test_load_balancer_discovery(cluster, gateway, run):
    rc, result = run(route_verify.main, dict(cluster.auth(), gateway_service={"name": "lb-gateway", "namespace": "istio-system"}, probes=[REFERENCE]))
    assert rc == 0, result
    assert result["gateway"]["details"]["http"]["source"] == "loadbalancer"
    assert result["gateway"]["addresses"] == {"http": gateway.address("http")}


@pytest.mark.parametrize(
    ("gateway_service", "message"),
    [
        (
            {"name": "lb-gateway", "namespace": "istio-system", "prefer": "nodeport"},
            "Service istio-system/lb-gateway is of type LoadBalancer with no LoadBalancer address nor node port",
        ),
        ({"name": "internal", "namespace": "istio-system"}, "Service istio-system/internal is of type ClusterIP"),
        ({"name": "istio-ingressgateway", "namespace": "istio-system", "http_port": "9999"}, "has no http port 9999"),
        ({"name": "nope", "namespace": "istio-system"}, "gateway address discovery: cannot read Service istio-system/nope"),
    ],
)
def test_discovery_errors(cluster, run, gateway_service, message):
    rc, result = run(route_verify.main, dict(cluster.auth(), gateway_service=gateway_service, probes=[REFERENCE]))
    assert rc == 1
    assert message in result["msg"]


def test_failing_probe_explained_from_cluster_objects(cluster, run):
    probes = [{"name": "headers", "host": "httpbin.example.com", "path": "/headers"}]
    args = dict(
        cluster.auth(), gateway_service={"name": "istio-ingressgateway", "namespace": "istio-system"}, explain={"namespaces": ["default"]}, probes=probes
    )
    rc, result = run(route_verify.main, args)
    assert rc == 1
    assert result["msg"].endswith("status 404, expected 2xx -- no route: VirtualService default/httpbin matches only /status and /delay")


def test_route_explain_reads_and_lints_the_cluster(cluster, run, tmp_path):
    kubeconfig = str(cluster.kubeconfig(tmp_path / "kubeconfig"))
    args = {
        "kubeconfig": kubeconfig,
        "namespaces": ["default", "istio-system"],
        "lint": True,
        "requests": [{"via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": "/delay/3"}],
    }
    rc, result = run(route_explain.main, args)
    assert rc == 0, result
    assert result["findings"] == []
    # the SEED objects, lb-gateway and internal in istio-system, and the API server's own kubernetes Service
    assert result["summary"]["objects"] == len(SEED_OBJECTS) + 3
    assert result["explanations"][0]["outcome"] == "route"
    rc, result = run(route_explain.main, dict(args, namespaces=["default"]))
    # without istio-system's Services the egress gateway destination is unknown: a warning, no failure
    assert rc == 0, result
    assert [(f["severity"], f["code"]) for f in result["findings"]] == [("warning", "destination-service-missing")]
    rc, result = run(route_explain.main, dict(args, namespaces=["*"]))
    assert rc == 0, result
