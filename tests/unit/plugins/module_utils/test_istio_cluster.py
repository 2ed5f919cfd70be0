"""Gateway address discovery from a gateway Service and its nodes (the pure part)."""

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio.cluster import DiscoveryError, node_address, pick_address, read_objects, select_port
from ansible_collections.meshops.istio.plugins.module_utils.k8s.client import auth_params

PORTS = [
    {"name": "status-port", "port": 15021, "nodePort": 31021},
    {"name": "http2", "port": 80, "nodePort": 30080},
    {"name": "https", "port": 443, "nodePort": 30443},
]


def service(svc_type="LoadBalancer", ingress=None, ports=None):
    ports = PORTS if ports is None else ports
    obj = {
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {"type": svc_type, "ports": ports, "selector": {"istio": "ingressgateway"}},
    }
    if ingress is not None:
        obj["status"] = {"loadBalancer": {"ingress": ingress}}
    return obj


NODES = [
    {"status": {"addresses": [{"type": "Hostname", "address": "node-a"}, {"type": "InternalIP", "address": "172.18.0.2"}]}},
    {"status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.3"}, {"type": "ExternalIP", "address": "203.0.113.7"}]}},
]


def test_load_balancer_ip():
    found = pick_address(service(ingress=[{"ip": "198.51.100.10"}]), NODES)
    assert found == {"address": "198.51.100.10:80", "source": "loadbalancer", "service_port": 80, "node_port": 30080}


def test_load_balancer_hostname_and_https_port():
    found = pick_address(service(ingress=[{"hostname": "lb.example.net"}]), NODES, scheme="https")
    assert found["address"] == "lb.example.net:443"


def test_pending_load_balancer_falls_back_to_the_node_port_on_an_external_ip():
    found = pick_address(service(ingress=[]), NODES)
    assert found == {"address": "203.0.113.7:30080", "source": "nodeport", "service_port": 80, "node_port": 30080}


def test_node_port_on_an_internal_ip_or_an_override():
    assert pick_address(service("NodePort"), NODES[:1])["address"] == "172.18.0.2:30080"
    assert pick_address(service("NodePort"), [], override_node_address="127.0.0.1")["address"] == "127.0.0.1:30080"
    assert pick_address(service("NodePort"), [], override_node_address="::1")["address"] == "[::1]:30080"


def test_prefer_node_port_over_a_load_balancer():
    assert pick_address(service(ingress=[{"ip": "198.51.100.10"}]), NODES, prefer="nodeport")["source"] == "nodeport"


def test_prefer_load_balancer_without_an_address():
    with pytest.raises(DiscoveryError, match="no LoadBalancer ingress address yet"):
        pick_address(service("NodePort"), NODES, prefer="loadbalancer")


def test_cluster_ip_service_needs_an_explicit_address():
    with pytest.raises(DiscoveryError, match=r"ClusterIP .* set address explicitly"):
        pick_address(service("ClusterIP"), NODES)


def test_no_node_address():
    with pytest.raises(DiscoveryError, match="no node address found"):
        pick_address(service("NodePort"), [])


@pytest.mark.parametrize(("wanted", "number"), [("status-port", 15021), (15021, 15021), ("15021", 15021), ("https", 443), (None, 80)])
def test_select_port_by_name_or_number(wanted, number):
    assert select_port(service(), wanted, "http")["port"] == number


def test_select_port_by_name_prefix_when_80_is_not_exposed():
    ports = [{"name": "http-alt", "port": 8080}, {"name": "https-alt", "port": 8443}]
    assert select_port(service(ports=ports), None, "http")["port"] == 8080
    assert select_port(service(ports=ports), None, "https")["port"] == 8443


def test_missing_port_names_what_exists():
    with pytest.raises(DiscoveryError, match=r"has no http port 8080 \(ports: status-port/15021, http2/80, https/443\); set gateway_service.http_port"):
        pick_address(service(), NODES, wanted_port=8080)


def test_node_address_order():
    assert node_address(NODES) == "203.0.113.7"
    assert node_address(NODES[:1]) == "172.18.0.2"
    assert node_address([]) is None


def test_auth_params_are_the_kubernetes_core_options():
    params = {"kubeconfig": "/k", "context": "kind-meshops", "probes": [], "address": None, "validate_certs": False}
    assert auth_params(params) == {"kubeconfig": "/k", "context": "kind-meshops", "validate_certs": False}


class _Listed:
    def __init__(self, items):
        self.items = items

    def to_dict(self):
        return {"items": [dict(i) for i in self.items]}


class _Forbidden(Exception):
    status = 403


class _Resource:
    def __init__(self, kind, client):
        self.kind, self.client = kind, client

    def get(self, namespace=None):
        if self.kind in self.client.forbidden:
            raise _Forbidden(f"{self.kind} is forbidden")
        return _Listed([{"metadata": {"name": f"{self.kind.lower()}-1", "namespace": namespace}}])


class _Client:
    """resource(kind, api_version) as kubernetes.core's client: a kind without its CRD raises."""

    def __init__(self, gateway_api=(), forbidden=()):
        self.gateway_api, self.forbidden = gateway_api, forbidden

    def resource(self, kind, api_version):
        known = self.gateway_api if api_version.startswith("gateway.networking.k8s.io/") else ISTIO_AND_SERVICE
        if kind not in known:
            raise LookupError(f"no {api_version} {kind}")
        return _Resource(kind, self)


ISTIO_AND_SERVICE = ["Gateway", "VirtualService", "ServiceEntry", "DestinationRule", "Service"]


def test_read_objects_takes_the_gateway_api_kinds_where_their_crds_exist():
    without = read_objects(_Client(), ["httpbin"])
    assert sorted(o["kind"] for o in without) == sorted(ISTIO_AND_SERVICE)
    with_crds = read_objects(_Client(gateway_api=("Gateway", "HTTPRoute", "ReferenceGrant")), ["httpbin"])
    assert sorted(o["kind"] for o in with_crds) == sorted([*ISTIO_AND_SERVICE, "Gateway", "HTTPRoute", "ReferenceGrant"])
    # a token that may not read them (traffic_api istio with least privilege): left out, not an error
    forbidden = read_objects(_Client(gateway_api=("Gateway", "HTTPRoute"), forbidden=("HTTPRoute",)), ["httpbin"])
    assert sorted(o["kind"] for o in forbidden) == sorted([*ISTIO_AND_SERVICE, "Gateway"])
