"""meshops.istio.route_verify: input rejected before any request, library checks, read-only results."""

import functools
import socket
import threading

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.module_utils.probe import expect as probe_expect
from ansible_collections.meshops.istio.plugins.modules import route_verify
from tests.helpers import run_module


@pytest.fixture
def module(capsys):
    """Run the module like Ansible does: args in, one JSON document out, exit code."""
    return functools.partial(run_module, route_verify.main, capsys)


@pytest.fixture
def listener():
    """A loopback listener that counts the connections it gets (and closes them)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)
    state = {"connections": 0}
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _addr = server.accept()
            except OSError:
                continue
            state["connections"] += 1
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    state["address"] = f"127.0.0.1:{server.getsockname()[1]}"
    yield state
    stop.set()
    thread.join(5)
    server.close()


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


GOOD = {"name": "good", "host": "httpbin.example.com", "path": "/status/200"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"probes": [GOOD, {"host": "a", "expect": {"stauts": 200}}]}, "probes.expect.stauts. Supported parameters include: body_contains"),
        ({"probes": [GOOD, {"host": "a", "expect": {"error": ["closed"]}}]}, "Got no match for: closed found in probes -> expect"),
        ({"probes": [GOOD, {"url": "htp://a/x"}]}, "url 'htp://a/x' must be http(s)://host[:port]/path"),
        ({"probes": [GOOD, {"url": "http://a:99999/x"}]}, "invalid url"),
        ({"probes": [GOOD, {"host": "a", "address": "http://a/b"}]}, "must be only scheme://host:port"),
        ({"probes": [GOOD], "timeout": -1}, "timeout must be a number > 0, got -1.0"),
        ({"probes": [GOOD], "retries": -2}, "retries must be an integer >= 0, got -2"),
        ({"probes": [GOOD], "workers": 0}, "workers must be an integer >= 1"),
        ({"probes": [GOOD, {"host": "a", "timeout": -3}]}, "timeout must be a number > 0"),
        ({"probes": [GOOD, {"url": "http://a/x", "host": "b"}]}, "url conflicts with host"),
        ({"probes": [GOOD, {"host": "a", "body": "x", "json_body": {"y": 1}}]}, "body and json_body are mutually exclusive"),
        ({"probes": [GOOD], "gateway_service": {"name": "gw", "namespace": "ns"}}, "parameters are mutually exclusive: address|gateway_service"),
        ({"probes": [GOOD, {"host": "a", "expect": {"status": 999}}]}, "status 999 is not an HTTP status"),
        ({"probes": [GOOD, {"host": "a", "expect": {"status": 200, "error": ["refused"]}}]}, "cannot be combined with response expectations status"),
        ({"probes": [GOOD, {"host": "a", "expect": {"body_regex": ["("]}}]}, "is not a valid regular expression"),
        ({"probes": [GOOD, {"host": "a", "headers": {"Host": "b"}}]}, "set the Host header with 'host'"),
        ({"probes": [GOOD, {"host": "a", "scheme": "https", "tls": {"client_key": "/k.pem"}}]}, "tls.client_key given without tls.client_cert"),
        ({"probes": [GOOD, {"name": "good", "host": "b"}]}, "probe name 'good' is used by probes [0, 1]"),
        ({"probes": []}, "probes must be a non-empty list"),
    ],
)
def test_bad_input_is_rejected_before_any_request(module, listener, args, message):
    args = dict(args, address=listener["address"])
    rc, result = module(args)
    assert rc == 1
    assert result["failed"] is True
    assert message in result["msg"]
    assert listener["connections"] == 0


def test_all_problems_in_one_message(module, listener):
    rc, result = module({"address": listener["address"], "timeout": -1, "probes": [{"url": "ftp://x/"}, {"host": "a", "path": "nope"}]})
    assert rc == 1
    assert result["msg"].startswith("invalid probes, nothing was sent: ")
    assert result["errors"] == [
        "timeout must be a number > 0, got -1.0",
        # one problem per cause: the bad url, no follow-on errors of what it would have given
        "probes[0]: url 'ftp://x/' must be http(s)://host[:port]/path",
        "probes[1]: path 'nope' must start with / and contain no whitespace",
    ]
    assert listener["connections"] == 0


def test_read_only_negative_probe(module):
    rc, result = module({"address": closed_port(), "probes": [{"host": "blocked.example.org", "expect": {"error": ["refused"]}}]})
    assert rc == 0, result
    assert result["changed"] is False
    assert result["summary"] == dict(result["summary"], total=1, passed=1, failed=0, skipped=0)


def test_check_mode_only_sends_safe_methods(module, listener):
    probes = [{"host": "a", "method": m, "expect": {"error": ["reset", "protocol"]}} for m in ("POST", "PUT", "DELETE", "PATCH")]
    rc, result = module({"address": listener["address"], "probes": probes}, check_mode=True)
    assert rc == 0, result
    assert result["changed"] is False
    assert [p["skipped"] for p in result["probes"]] == [True, True, True, True]
    assert listener["connections"] == 0


def test_failed_probe_fails_the_module_read_only(module):
    rc, result = module({"address": closed_port(), "probes": [{"name": "dead", "host": "a"}]})
    assert rc == 1
    assert result["changed"] is False
    assert result["msg"].startswith("1 of 1 probes failed:\n- dead (via 127.0.0.1:")
    assert result["probes"][0]["failed_expectations"][0]["actual"] == "refused"


def test_missing_kubernetes_library(module, monkeypatch, listener):
    monkeypatch.setattr(k8s_client, "HAS_KUBERNETES", False)
    monkeypatch.setattr(k8s_client, "KUBERNETES_IMPORT_ERROR", "Traceback: ImportError")
    rc, result = module({"gateway_service": {"name": "istio-ingressgateway", "namespace": "istio-system"}, "probes": [GOOD]})
    assert rc == 1
    assert "Failed to import the required Python library (kubernetes)" in result["msg"]
    rc, result = module({"address": listener["address"], "explain": {"namespaces": ["default"]}, "probes": [dict(GOOD, expect={"error": ["reset"]})]})
    assert rc == 1
    assert "Failed to import the required Python library (kubernetes)" in result["msg"]
    assert listener["connections"] == 0


def test_missing_jmespath_library(module, monkeypatch, listener):
    monkeypatch.setattr(route_verify, "HAS_JMESPATH", False)
    monkeypatch.setattr(probe_expect, "HAS_JMESPATH", False)
    rc, result = module({"address": listener["address"], "probes": [dict(GOOD, expect={"json": [{"query": "a", "present": True}]})]})
    assert rc == 1
    assert "Failed to import the required Python library (jmespath)" in result["msg"]
    assert listener["connections"] == 0


def test_discovery_without_a_usable_cluster_fails_clearly(module, tmp_path, listener):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    rc, result = module({"kubeconfig": str(kubeconfig), "gateway_service": {"name": "istio-ingressgateway", "namespace": "istio-system"}, "probes": [GOOD]})
    assert rc == 1
    assert result["msg"].startswith(("cannot create the Kubernetes API client", "gateway address discovery"))
    assert listener["connections"] == 0


def test_report_that_cannot_be_written(module, tmp_path):
    rc, result = module(
        {"address": closed_port(), "report": {"path": str(tmp_path / "no" / "such" / "r.xml")}, "probes": [{"host": "a", "expect": {"error": ["refused"]}}]}
    )
    assert rc == 1
    assert result["msg"].startswith("cannot write report")
    assert result["probes"][0]["passed"] is True


def test_argument_spec_matches_the_kubernetes_core_auth_options():
    spec = route_verify.argument_spec()
    for option in ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert", "client_cert", "client_key", "proxy", "impersonate_user"):
        assert option in spec
