"""The filter plugins, called the way Jinja calls them."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meshops.istio.plugins.filter import gateways, traffic
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
