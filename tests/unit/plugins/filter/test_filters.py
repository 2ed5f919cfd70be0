"""The filter plugins, called the way Jinja calls them."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meshops.istio.plugins.filter import gateways, k8s, traffic
from tests.unit.plugins.module_utils import test_traffic_model as cases


def test_filters_are_registered():
    assert set(traffic.FilterModule().filters()) == {"traffic_errors", "traffic_manifests", "traffic_stale", "traffic_owned_selector"}
    assert set(gateways.FilterModule().filters()) == {"gateway_errors", "gateway_values"}


def test_traffic_manifests_and_errors():
    objects = traffic.traffic_manifests(cases.SEED_INGRESS, cases.SEED_EGRESS, cases.SETTINGS)
    assert len(objects) == 6
    assert traffic.traffic_errors(cases.SEED_INGRESS, cases.SEED_EGRESS, cases.SETTINGS) == []
    assert traffic.traffic_stale(objects, objects[:2])[0]["kind"] == "ServiceEntry"
    assert traffic.traffic_owned_selector({"instance": "x"}) == "app.kubernetes.io/managed-by=meshops.istio,meshops.istio/instance=x"


def test_traffic_manifests_raises_a_filter_error_with_every_problem():
    with pytest.raises(AnsibleFilterError) as raised:
        traffic.traffic_manifests([{"name": "x"}], [])
    message = str(raised.value)
    assert "invalid traffic routes" in message
    assert "traffic_ingress_routes[0] (x): hosts: needs at least one host" in message
    assert "traffic_ingress_routes[0] (x): gateway: is required" in message


def test_gateway_filters():
    assert gateways.gateway_errors([{"name": "a"}]) == []
    assert gateways.gateway_values({"name": "istio-egressgateway"})["labels"] == {"istio": "egressgateway"}


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (
            'Failed to apply object: {"kind":"Status","apiVersion":"v1","status":"Failure",'
            '"message":"admission webhook \\"validation.istio.io\\" denied the request: bad regex","code":400}',
            'admission webhook "validation.istio.io" denied the request: bad regex',
        ),
        ('Failed to create object: {"kind":"Status","message":"namespaces \\"x\\" not found"}', 'namespaces "x" not found'),
        ("Failed to apply object: connection refused", "connection refused"),
        ("Failed to apply object: {not json", "{not json"),
        (None, ""),
    ],
    ids=["webhook", "create", "plain", "broken-json", "none"],
)
def test_k8s_error_message(msg, expected):
    assert k8s.k8s_error_message(msg) == expected
    assert k8s.FilterModule().filters() == {"k8s_error_message": k8s.k8s_error_message}
