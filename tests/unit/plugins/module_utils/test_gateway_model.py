"""Gateways of the gateways role: validation messages and the values of the official chart."""

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.models import gateways as gm

DEFAULTS = [
    {"name": "istio-ingressgateway", "istio_label": "ingressgateway", "service": {"type": "LoadBalancer"}},
    {"name": "istio-egressgateway", "istio_label": "egressgateway", "service": {"type": "ClusterIP"}},
]


def test_the_defaults_are_valid_and_give_the_labels_gateways_select():
    assert gm.validate(DEFAULTS) == []
    assert gm.chart_values(DEFAULTS[0]) == {
        "name": "istio-ingressgateway",
        "labels": {"istio": "ingressgateway"},
        "replicaCount": 1,
        "autoscaling": {"enabled": False},
        "service": {"type": "LoadBalancer"},
    }
    assert gm.chart_values(DEFAULTS[1])["labels"] == {"istio": "egressgateway"}


def test_the_istio_label_defaults_to_the_name_without_its_prefix_like_the_chart():
    assert gm.istio_label({"name": "istio-ingressgateway"}) == "ingressgateway"
    assert gm.istio_label({"name": "edge"}) == "edge"


def test_node_ports_replicas_resources_revision_and_extra_values():
    gateway = {
        "name": "istio-ingressgateway",
        "labels": {"team": "edge"},
        "replicas": 3,
        "resources": {"requests": {"cpu": "500m"}},
        "service": {
            "type": "NodePort",
            "ports": [{"name": "http2", "port": 80, "node_port": 30080}, {"name": "https", "port": 443, "target_port": 8443, "node_port": 30443}],
            "annotations": {"lb": "internal"},
            "external_traffic_policy": "Local",
        },
        "values": {"service": {"loadBalancerSourceRanges": ["10.0.0.0/8"]}, "podAnnotations": {"a": "b"}},
    }
    assert gm.validate([gateway]) == []
    assert gm.chart_values(gateway, revision="canary") == {
        "name": "istio-ingressgateway",
        "labels": {"istio": "ingressgateway", "team": "edge"},
        "replicaCount": 3,
        "autoscaling": {"enabled": False},
        # more than one replica: one keeps serving while the others are replaced
        "podDisruptionBudget": {"minAvailable": 1},
        "revision": "canary",
        "resources": {"requests": {"cpu": "500m"}},
        "service": {
            "type": "NodePort",
            "ports": [
                {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443, "nodePort": 30443},
            ],
            "annotations": {"lb": "internal"},
            "externalTrafficPolicy": "Local",
            "loadBalancerSourceRanges": ["10.0.0.0/8"],
        },
        "podAnnotations": {"a": "b"},
    }


BAD = [
    ([{"name": "Bad_Name"}], "gateways_list[0] (Bad_Name): name: 'Bad_Name' is not a valid Kubernetes name"),
    ([{"name": "a"}, {"name": "a"}], "gateways_list[1] (a): name: gateway istio-system/a is already defined by gateways_list[0] (a)"),
    ([{"name": "a", "labels": {"istio": "x"}}], "gateways_list[0] (a): labels.istio: set istio_label instead"),
    ([{"name": "a", "replicas": -1}], "gateways_list[0] (a): replicas: -1 must be a non-negative integer"),
    ([{"name": "a", "service": {"type": "External"}}], "service.type: 'External' is not one of LoadBalancer, NodePort, ClusterIP"),
    (
        [{"name": "a", "service": {"type": "ClusterIP", "ports": [{"name": "http2", "port": 80, "node_port": 30080}]}}],
        "service.ports[0].node_port: needs service.type NodePort or LoadBalancer",
    ),
    (
        [{"name": "a", "service": {"type": "NodePort", "ports": [{"name": "http2", "port": 80, "node_port": 80}]}}],
        "service.ports[0].node_port: 80 is outside the node port range 30000-32767",
    ),
    (
        [
            {"name": "a", "service": {"type": "NodePort", "ports": [{"name": "http2", "port": 80, "node_port": 30080}]}},
            {"name": "b", "service": {"type": "NodePort", "ports": [{"name": "http2", "port": 80, "node_port": 30080}]}},
        ],
        "gateways_list[1] (b): service.ports[0].node_port: 30080 is also used by gateways_list[0] (a)",
    ),
    ([{"name": "a", "service": {"ports": [{"name": "x", "port": 80}, {"name": "x", "port": 81}]}}], "service.ports[1].name: x is used twice"),
    ([{"name": "a", "service": {"ports": [{"name": "x", "port": 0}]}}], "service.ports[0].port: 0 is not a port number"),
    ([{"name": "a", "service": {"ports": []}}], "service.ports: must be a non-empty list"),
    ([{"name": "a", "sevice": {}}], "gateways_list[0] (a): sevice: unknown option"),
    ("x", "gateways_list: must be a list of gateways"),
]


@pytest.mark.parametrize(("gateways", "message"), BAD, ids=[case[1] for case in BAD])
def test_each_documented_error(gateways, message):
    errors = gm.validate(gateways)
    assert any(message in e for e in errors), errors
