"""Ingress HTTPS for real (issue 11): a Gateway server with TLS SIMPLE and one with MUTUAL on the
kind cluster's ingress gateway, certificates made by the test (a test CA, a server certificate
per host, a client certificate), the credential Secrets kept by the traffic role
(traffic_tls_credentials) and referenced by the routes, and
route_verify checking SNI, the certificate chain and the client certificate."""

import copy
import json

import pytest

from tests.integration.kind import probes
from tests.support.kind import INGRESS_HTTPS, recap
from tests.support.pki import Pki

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]

SIMPLE_HOST = "secure.example.com"
MUTUAL_HOST = "mutual.example.com"
GATEWAY_NAMESPACE = "istio-system"  # where the ingress gateway's pods read credential Secrets


@pytest.fixture(name="pki", scope="module")
def fixture_pki(tmp_path_factory):
    """A test CA with a server certificate per host, a client CA with a client certificate, a rogue CA."""
    return Pki(tmp_path_factory.mktemp("pki"), {SIMPLE_HOST: SIMPLE_HOST, MUTUAL_HOST: MUTUAL_HOST})


def credential(name, pki, host, with_client_ca):
    """A TLS credential the traffic role keeps as a Secret in the gateways' namespace."""
    cert, key = pki.servers[host]
    item = {"name": name, "cert": cert.read_text(), "key": key.read_text()}
    if with_client_ca:  # MUTUAL: the CA of the client certificates the server accepts
        item["ca_cert"] = pki.client_ca_path.read_text()
    return item


def tls_route(name, host, mode, credential):
    route = copy.deepcopy(probes.SEED_ROUTE)
    route.update(
        name=name,
        hosts=[host],
        gateway={"name": f"{name}-gateway", "port": 443, "protocol": "HTTPS", "tls": {"mode": mode, "credential_name": credential}},
    )
    return route


def https_probe(name, host, pki, expect, client="client", sni=None, ca=None):
    tls = {"ca_path": str(ca or pki.ca_path), "validate_certs": True}
    if sni:
        tls["sni"] = sni
    if client == "client":
        tls.update(client_cert=str(pki.client_cert), client_key=str(pki.client_key))
    elif client == "rogue":
        tls.update(client_cert=str(pki.rogue_cert), client_key=str(pki.rogue_key))
    return {"name": name, "address": f"https://{INGRESS_HTTPS}", "host": host, "path": "/status/200", "tls": tls, "expect": expect}


@pytest.fixture(name="tls_routes", scope="module")
def fixture_tls_routes(cluster, pki):
    credentials = [credential("meshops-secure", pki, SIMPLE_HOST, with_client_ca=False), credential("meshops-mutual", pki, MUTUAL_HOST, with_client_ca=True)]
    routes = [probes.SEED_ROUTE, tls_route("secure", SIMPLE_HOST, "SIMPLE", "meshops-secure"), tls_route("mutual", MUTUAL_HOST, "MUTUAL", "meshops-mutual")]
    rc, output = cluster.site({"traffic_ingress_routes": routes, "traffic_tls_credentials": credentials, "verify_egress": False}, tags=("traffic", "verify"))
    assert rc == 0, recap(output)
    assert "PRIVATE KEY" not in json.dumps(output)  # the keys never reach the job's output
    kinds = cluster.kubectl("-n", GATEWAY_NAMESPACE, "get", "secret", "meshops-secure", "meshops-mutual", "-o", "jsonpath={.items[*].type}")
    assert kinds == "kubernetes.io/tls kubernetes.io/tls", kinds
    yield routes
    # the credentials left the list: prune deletes their Secrets with the routes' objects
    rc, output = cluster.site({"verify_egress": False, "traffic_prune": True}, tags=("traffic", "verify"))
    assert rc == 0, recap(output)
    left = cluster.kubectl("-n", GATEWAY_NAMESPACE, "get", "secret", "meshops-secure", "meshops-mutual", "--ignore-not-found", "-o", "name")
    assert left == "", left


OK = {"status": 200, "headers": {"server": "istio-envoy"}}


def test_simple_tls_serves_the_certificate_of_the_sni_host(cluster, pki, tls_routes):
    rc, result = cluster.probe([https_probe("SIMPLE, chain checked against the test CA", SIMPLE_HOST, pki, OK, client=None)], retries=30, delay=1)
    assert rc == 0, result.get("msg")


def test_mutual_tls_needs_a_client_certificate_of_the_ca(cluster, pki, tls_routes):
    rc, result = cluster.probe(
        [
            https_probe("MUTUAL with the client certificate", MUTUAL_HOST, pki, OK),
            https_probe("MUTUAL without a client certificate", MUTUAL_HOST, pki, {"error": ["tls", "reset", "protocol"]}, client=None),
            https_probe("MUTUAL with a certificate of a rogue CA", MUTUAL_HOST, pki, {"error": ["tls", "reset", "protocol"]}, client="rogue"),
        ],
        retries=30,
        delay=1,
    )
    assert rc == 0, result.get("msg")


def test_the_chain_and_the_sni_are_checked(cluster, pki, tls_routes):
    refused = {"error": ["tls", "reset", "protocol"]}
    rc, result = cluster.probe(
        [
            # the server certificate does not chain to another CA: the client refuses it
            https_probe("SIMPLE checked against another CA", SIMPLE_HOST, pki, {"error": ["tls"]}, client=None, ca=pki.rogue_ca_path),
            # the SNI picks the server: the MUTUAL host's server asks for a client certificate
            https_probe("SNI of the MUTUAL host, no client certificate", SIMPLE_HOST, pki, refused, client=None, sni=MUTUAL_HOST),
            # an SNI no server has gets no TLS session at all
            https_probe("SNI nobody serves", SIMPLE_HOST, pki, refused, client=None, sni="nobody.example.com"),
        ],
        retries=30,
        delay=1,
    )
    assert rc == 0, result.get("msg")
