"""The filter plugins, called the way Jinja calls them."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meshops.istio.plugins.filter import gateways, inputs, traffic
from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from tests.fixtures import scenario


def test_filters_are_registered():
    assert set(traffic.FilterModule().filters()) == {"traffic_manifests", "traffic_credentials", "traffic_namespaces"}
    assert set(gateways.FilterModule().filters()) == {"gateway_releases"}
    assert set(inputs.FilterModule().filters()) == {"input_problems", "gateway_identity", "istio_vocab"}


def test_traffic_credentials_fail_naming_the_field_not_the_value():
    with pytest.raises(AnsibleFilterError) as err:
        traffic.traffic_credentials([{"name": "a", "cert": "-----BEGIN CERTIFICATE-----", "key": "hunter2"}], {}, "istio-system")
    assert "traffic_tls_credentials[0] (a): key: is not a PEM private key" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_traffic_manifests_and_namespaces():
    objects = traffic.traffic_manifests(scenario.ingress_routes(), scenario.egress_routes(), scenario.settings())
    assert len(objects) == 6
    # the egress gateway's Service lives in istio-system: its namespace is read too
    assert traffic.traffic_namespaces(objects) == ["httpbin", "istio-system"]


def test_traffic_manifests_raises_a_filter_error_with_every_problem():
    with pytest.raises(AnsibleFilterError) as raised:
        traffic.traffic_manifests([{"name": "x"}], [], scenario.settings())
    message = str(raised.value)
    assert "invalid traffic routes" in message
    assert "traffic_ingress_routes[0] (x): hosts: needs at least one host" in message
    assert "traffic_ingress_routes[0] (x): gateway: is required" in message


def test_gateway_releases():
    (release,) = gateways.gateway_releases([{"name": "istio-egressgateway"}], "istio-system", "", "IfNotPresent", {"chart_version": "1.31.0"})
    assert release["name"] == "istio-egressgateway"
    assert release["namespace"] == "istio-system"
    assert release["chart_version"] == "1.31.0"
    assert release["values"]["labels"] == {"istio": "egressgateway"}
    assert release["values"]["imagePullPolicy"] == "IfNotPresent"


def test_gateway_identity_comes_from_the_gateways_list():
    gateway_list = scenario.variable("gateways_list")
    egress = inputs.gateway_identity(gateway_list, "mesh-gateways", "egress")
    assert egress == {
        "name": "istio-egressgateway",
        "namespace": "mesh-gateways",
        "direction": "egress",
        "selector": {"istio": "egressgateway"},
        "label_selector": "istio=egressgateway",
        "service": "istio-egressgateway",
        "fqdn": "istio-egressgateway.mesh-gateways.svc.cluster.local",
    }
    assert inputs.gateway_identity(gateway_list, "x", "ingress")["selector"] == {"istio": "ingressgateway"}
    assert inputs.gateway_identity(gateway_list, "x", "ingress", "istio-egressgateway")["name"] == "istio-egressgateway"
    assert inputs.gateway_identity(gateway_list, "x", "ingress", "nope") is None


def test_istio_vocab():
    assert inputs.istio_vocab("api_version") == vocab.API_VERSION
    assert inputs.istio_vocab("crd_names") == [
        "gateways.networking.istio.io",
        "serviceentries.networking.istio.io",
        "destinationrules.networking.istio.io",
        "virtualservices.networking.istio.io",
    ]
    assert inputs.istio_vocab("owned_selector", "x") == "app.kubernetes.io/managed-by=meshops.istio,meshops.istio/instance=x"
    assert inputs.istio_vocab("revision_label", "") == "default"
    assert inputs.istio_vocab("revision_of_version", "1.31.0") == "1-31-0"
    with pytest.raises(AnsibleFilterError, match="unknown name 'nope'"):
        inputs.istio_vocab("nope")


def test_input_problems_names_the_role():
    assert inputs.input_problems({"httpbin_replicas": -1}, "httpbin") == ["httpbin: httpbin_replicas: -1 must be zero or more"]
    with pytest.raises(AnsibleFilterError, match="unknown role"):
        inputs.input_problems({}, "nope")
