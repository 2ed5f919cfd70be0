"""Egress HTTPS for real (issue 11), the two ways of Istio's egress gateway tasks:

- TLS passthrough: the mesh client speaks TLS to edition.cnn.com:443 itself; the sidecar routes
  the connection by SNI to the egress gateway, whose TLS PASSTHROUGH server passes it on to the
  external host undecrypted. Proven by the egress gateway's access log (the SNI and the
  upstream cluster outbound|443||edition.cnn.com) and by the certificate the client checked:
  the external host's, signed by the test CA.
- TLS origination: the mesh client speaks plain HTTP on port 80; the egress gateway opens TLS to
  port 443, checking the host's certificate against the CA in a Secret (credentialName) that
  the traffic role keeps (traffic_tls_credentials).
  Proven by the gateway's access log (the request's marker and the upstream cluster on 443),
  and refused (503) when the Secret holds another CA.

The external host (a go-httpbin container on the kind network) gets a TLS listener on 443 with
a certificate of a test CA for the duration of the module; the routes go through site.yml (the
traffic and verify roles), and the reference routes are restored at the end."""

import copy
import json
import shutil

import pytest

from meshops_dev import apps
from tests.fixtures import scenario
from tests.helpers import failed_task, task_results
from tests.support.kind import recap
from tests.support.pki import Pki

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]

HOST = "edition.cnn.com"
GATEWAY_NAMESPACE = "istio-system"  # where the egress gateway's pods read credential Secrets
CA_SECRET = "meshops-cnn-ca"
ROGUE_SECRET = "meshops-rogue-ca"


@pytest.fixture(name="pki", scope="module")
def fixture_pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("egress-pki"), {"cnn": HOST})


@pytest.fixture(name="tls_host", scope="module")
def fixture_tls_host(pki, cluster, tmp_path_factory):
    """The external host's TLS listener; at the end the reference routes, and the credential
    Secrets pruned by the traffic role (they left traffic_tls_credentials)."""
    certs = tmp_path_factory.mktemp("egress-certs")
    cert, key = pki.servers["cnn"]
    shutil.copy(cert, certs / "tls.crt")
    shutil.copy(key, certs / "tls.key")
    apps.external_tls_up(certs)
    yield
    rc, output = cluster.site({"traffic_prune": True}, tags=("traffic", "verify"))
    assert rc == 0, recap(output)
    left = cluster.kubectl("-n", GATEWAY_NAMESPACE, "get", "secret", CA_SECRET, ROGUE_SECRET, "--ignore-not-found", "-o", "name")
    apps.external_host_down(apps.EXTERNAL_TLS_CONTAINER)
    assert left == "", left


def site(cluster, pki, extra):
    """site.yml's traffic and verify roles with the CA credentials the egress gateway may need:
    Secrets the traffic role keeps (traffic_tls_credentials), in the gateways' namespace."""
    credentials = [{"name": CA_SECRET, "ca_cert": pki.ca_path.read_text()}, {"name": ROGUE_SECRET, "ca_cert": pki.rogue_ca_path.read_text()}]
    return cluster.site(dict(extra, traffic_tls_credentials=credentials), tags=("traffic", "verify"))


def cnn(**gateway):
    route = copy.deepcopy(scenario.egress_routes()[0])
    route["egress_gateway"] = gateway
    return route


def egress_probe(output):
    """The mesh_probe result of the verify role's egress task."""
    results = [result for name, result in task_results(output, "kind-meshops") if "Send mesh traffic to the external host" in name]
    assert results, "the verify role sent no egress request"
    return results[0]


def test_https_passes_through_the_egress_gateway_by_sni(cluster, pki, tls_host):
    extra = {
        "traffic_egress_routes": [cnn(passthrough_port=443)],
        "verify_egress_requests": [{"url": f"https://{HOST}/get", "ca_cert": pki.ca_path.read_text()}],
    }
    rc, output = site(cluster, pki, extra)
    assert rc == 0, (recap(output), (failed_task(output, "kind-meshops") or ("", {}))[1].get("msg"))
    requests = egress_probe(output)["requests"]
    https = next(r for r in requests if r["url"].startswith("https://"))
    assert https["passed"] and https["status"] == 200, https
    # the gateway logged a TCP-level line: no method or path (it never decrypted), the SNI, port 443
    assert '"- - -"' in https["log_line"], https["log_line"]
    fields = https["log_line"].split()
    assert HOST in fields and f"outbound|443||{HOST}" in fields, https["log_line"]
    # the plain HTTP route of the reference scenario still goes through the gateway
    http = next(r for r in requests if r["url"].startswith("http://"))
    assert http["passed"] and f"outbound|80||{HOST}" in http["log_line"], http


def test_https_checked_against_another_ca_is_refused(cluster, pki, tls_host):
    """The client checks the chain it gets through the gateway: the external host's certificate."""
    extra = {
        "traffic_egress_routes": [cnn(passthrough_port=443)],
        "verify_egress_requests": [{"url": f"https://{HOST}/get", "ca_cert": pki.rogue_ca_path.read_text()}],
        "verify_retries": 2,
    }
    rc, output = site(cluster, pki, extra)
    assert rc != 0
    result = egress_probe(output)
    assert result.get("failed"), result
    assert f"https://{HOST}/get" in result["msg"] and "answered nothing" in result["msg"], result["msg"]
    assert "certificate" in result["msg"].lower(), result["msg"]


def test_the_egress_gateway_originates_tls(cluster, pki, tls_host):
    extra = {"traffic_egress_routes": [cnn(originate_tls={"port": 443, "credential_name": CA_SECRET})]}
    rc, output = site(cluster, pki, extra)
    assert rc == 0, (recap(output), (failed_task(output, "kind-meshops") or ("", {}))[1].get("msg"))
    http = egress_probe(output)["requests"][0]
    assert http["passed"] and http["status"] == 200, http
    # the request the mesh sent on port 80 left the gateway for port 443
    assert http["marker"] in http["log_line"] and f"outbound|443||{HOST}" in http["log_line"].split(), http["log_line"]
    rule = cluster.kubectl("-n", "httpbin", "get", "destinationrule", "originate-tls-for-cnn", "-o", "jsonpath={.spec.trafficPolicy.portLevelSettings[0].tls}")
    assert '"mode":"SIMPLE"' in rule and f'"credentialName":"{CA_SECRET}"' in rule, rule
    # the credential is the role's Secret: the CA alone, labelled as the instance's
    kind = cluster.kubectl("-n", GATEWAY_NAMESPACE, "get", "secret", CA_SECRET, "-o", "jsonpath={.type} {.metadata.labels.meshops\\.istio/instance}")
    assert kind == "Opaque default", kind
    # and nothing of it in the job's output
    assert "BEGIN CERTIFICATE" not in json.dumps(output)


def test_the_egress_gateway_originates_tls_with_the_gateway_api(cluster, pki, tls_host):
    # Istio's TLS origination task with the Gateway API: HTTPRoutes to the egress gateway and on to
    # the host's port 443, the DestinationRule originating TLS there (the CRDs installed if missing)
    extra = {
        "traffic_api": "gateway_api",
        "control_plane_gateway_api_crds": True,
        "traffic_egress_routes": [cnn(originate_tls={"port": 443, "credential_name": CA_SECRET})],
    }
    credentials = [{"name": CA_SECRET, "ca_cert": pki.ca_path.read_text()}]
    rc, output = cluster.site(dict(extra, traffic_tls_credentials=credentials), tags=("control_plane", "traffic", "verify"))
    assert rc == 0, (recap(output), (failed_task(output, "kind-meshops") or ("", {}))[1].get("msg"))
    http = egress_probe(output)["requests"][0]
    assert http["passed"] and http["status"] == 200, http
    assert http["marker"] in http["log_line"] and f"outbound|443||{HOST}" in http["log_line"].split(), http["log_line"]
    forward = json.loads(cluster.kubectl("-n", "httpbin", "get", "httproutes.gateway.networking.k8s.io", "forward-cnn-from-egress-gateway", "-o", "json"))
    assert forward["spec"]["rules"][0]["backendRefs"][0]["port"] == 443, forward["spec"]
    assert cluster.kubectl("-n", "httpbin", "get", "virtualservices.networking.istio.io", "-o", "name") == ""


def test_origination_checks_the_host_certificate(cluster, pki, tls_host):
    """With another CA in the Secret the gateway refuses the host's certificate: 503, not a silent downgrade."""
    extra = {"traffic_egress_routes": [cnn(originate_tls={"port": 443, "credential_name": ROGUE_SECRET})], "verify_retries": 3}
    rc, output = site(cluster, pki, extra)
    assert rc != 0
    result = egress_probe(output)
    assert result["requests"][0]["status"] == 503, result["requests"][0]
