"""The probe engine of meshops.istio.route_verify against a real Envoy and go-httpbin.

Direct calls of the engine (prepare + run), as the module makes them: every expectation
type passing and failing, negative probes, TLS with SNI and client certificates,
convergence (backend started late, route changed while probing), check mode, reports.
"""

import json
import pathlib
import socket
import threading
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.probe import report as probe_report
from ansible_collections.meshops.istio.plugins.module_utils.probe import runner as probe_runner

pytestmark = pytest.mark.envoy


def run(probes, check_mode=False, defaults=None, **settings):
    prepared, checked = probe_runner.prepare(probes, defaults or {}, settings)
    return probe_runner.run(prepared, checked, check_mode=check_mode)


def one(probe, **settings):
    results, _summary = run([probe], **settings)
    return results[0]


@pytest.fixture
def http(gateway):
    """A probe through the plain HTTP listener."""

    def make(host="httpbin.example.com", path="/status/200", **kwargs):
        return dict(address=gateway.address("http"), host=host, path=path, **kwargs)

    return make


def failed(result):
    return [(f["expectation"], f["actual"]) for f in result["failed_expectations"]]


# -- the reference check of SEED.md --------------------------------------------------------------
def test_reference_check_passes(http):
    result = one(http(method="HEAD", expect={"status": 200, "headers": {"server": "istio-envoy"}, "headers_present": ["x-envoy-upstream-service-time"]}))
    assert result["passed"], result
    assert result["status"] == 200
    assert result["headers"]["server"] == "istio-envoy"
    assert result["attempts"] == 1
    assert result["time_to_first_success"] is not None


@pytest.mark.parametrize(
    ("host", "path"),
    [("httpbin.example.com", "/headers"), ("httpbin.example.com", "/anything/status"), ("other.example.com", "/status/200")],
)
def test_unrouted_paths_and_hosts_are_404(http, host, path):
    result = one(http(host=host, path=path, expect={"status": 404, "headers_absent": ["x-envoy-upstream-service-time"]}))
    assert result["passed"], result


def test_negative_probe_fails_when_the_route_exists(http):
    result = one(http(path="/status/200", expect={"status": 404}))
    assert not result["passed"]
    assert failed(result) == [("status", 200)]


# -- status ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "status", "passes"),
    [
        ("/status/200", 200, True),
        ("/status/418", 418, True),
        ("/status/200", 201, False),
        ("/status/204", [200, 204], True),
        ("/status/503", [200, 204], False),
        ("/status/201", "2xx", True),
        ("/status/302", "2xx", False),
        ("/status/503", "500-599", True),
        ("/status/404", "500-599", False),
        ("/status/404", ["2xx", 404], True),
    ],
)
def test_status_expectations(http, path, status, passes):
    result = one(http(path=path, expect={"status": status}))
    assert result["passed"] is passes, result
    if not passes:
        assert failed(result) == [("status", int(path.rsplit("/", 1)[1]))]


def test_default_expectation_is_2xx(http):
    assert one(http(path="/status/204"))["passed"]
    result = one(http(path="/status/500"))
    assert not result["passed"]
    assert failed(result) == [("status", 500)]


# -- headers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expect", "passes", "failure"),
    [
        ({"headers": {"server": "istio-envoy"}}, True, None),
        ({"headers": {"Server": "istio-envoy"}}, True, None),
        ({"headers": {"server": "nginx"}}, False, ("headers", "istio-envoy")),
        ({"headers_present": ["x-envoy-upstream-service-time", "content-type"]}, True, None),
        ({"headers_present": ["x-not-there"]}, False, ("headers_present", None)),
        ({"headers_absent": ["x-powered-by"]}, True, None),
        ({"headers_absent": ["server"]}, False, ("headers_absent", "istio-envoy")),
        ({"headers_regex": {"content-type": "^application/json"}}, True, None),
        ({"headers_regex": {"content-type": "^text/html"}}, False, ("headers_regex", "application/json; charset=utf-8")),
        ({"headers_regex": {"x-not-there": "."}}, False, ("headers_regex", None)),
    ],
)
def test_header_expectations(http, expect, passes, failure):
    result = one(http(host="echo.example.com", path="/json", expect=expect))
    assert result["passed"] is passes, result
    if failure:
        assert failed(result) == [failure]


def test_response_header_set_by_upstream(http):
    probe = http(host="echo.example.com", path="/response-headers?x-meshops=canary", expect={"headers": {"x-meshops": "canary"}})
    assert one(probe)["passed"]
    probe["expect"] = {"headers": {"x-meshops": "stable"}}
    assert failed(one(probe)) == [("headers", "canary")]


# -- body ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expect", "passes", "kind"),
    [
        ({"body_contains": "echo.example.com"}, True, None),
        ({"body_contains": ["echo.example.com", "X-Probe"]}, True, None),
        ({"body_contains": "httpbin.example.com"}, False, "body_contains"),
        ({"body_not_contains": "Authorization"}, True, None),
        ({"body_not_contains": "X-Probe"}, False, "body_not_contains"),
        ({"body_regex": r'"Host":\s*\[\s*"echo\.example\.com"'}, True, None),
        ({"body_regex": r"^<html>"}, False, "body_regex"),
    ],
)
def test_body_expectations(http, expect, passes, kind):
    result = one(http(host="echo.example.com", path="/headers", headers={"X-Probe": "abc"}, expect=expect))
    assert result["passed"] is passes, result
    if kind:
        assert [f["expectation"] for f in result["failed_expectations"]] == [kind]
        assert "echo.example.com" in result["failed_expectations"][0]["actual"]


@pytest.mark.parametrize(
    ("item", "passes", "actual"),
    [
        ({"query": "headers.Host[0]", "equals": "echo.example.com"}, True, None),
        ({"query": "headers.Host[0]", "equals": "httpbin.example.com"}, False, "echo.example.com"),
        ({"query": 'headers."X-Probe"', "contains": "abc"}, True, None),
        ({"query": 'headers."X-Probe"', "contains": "xyz"}, False, ["abc"]),
        ({"query": 'headers."User-Agent"[0]', "regex": "^meshops-istio-route-verify/"}, True, None),
        ({"query": 'headers."User-Agent"[0]', "regex": "^curl/"}, False, "meshops-istio-route-verify/1.0"),
        ({"query": 'headers."X-Probe"', "present": True}, True, None),
        ({"query": 'headers."X-Missing"', "present": True}, False, None),
        ({"query": 'headers."X-Missing"', "present": False}, True, None),
        ({"query": 'headers."X-Probe"', "present": False}, False, ["abc"]),
    ],
)
def test_json_expectations_on_the_headers_echo(http, item, passes, actual):
    result = one(http(host="echo.example.com", path="/headers", headers={"X-Probe": "abc"}, expect={"json": [item]}))
    assert result["passed"] is passes, result
    if not passes:
        assert failed(result) == [("json", actual)]


def test_json_expectation_on_a_body_that_is_not_json(http):
    result = one(http(host="echo.example.com", path="/html", expect={"json": [{"query": "a", "present": True}]}))
    assert not result["passed"]
    assert result["failed_expectations"][0]["message"].startswith("body is not JSON")


def test_max_latency(http):
    assert one(http(path="/delay/1", expect={"status": 200, "max_latency": 30}))["passed"]
    result = one(http(path="/delay/1", expect={"status": 200, "max_latency": 0.2}))
    assert not result["passed"]
    assert result["failed_expectations"][0]["expectation"] == "max_latency"
    assert result["failed_expectations"][0]["actual"] >= 1.0  # the server holds the answer for a second


def test_min_latency_proves_a_delay(http):
    assert one(http(path="/delay/1", expect={"status": 200, "min_latency": 1.0}))["passed"]
    result = one(http(path="/status/200", expect={"status": 200, "min_latency": 30}))
    assert not result["passed"]
    assert result["failed_expectations"][0]["expectation"] == "min_latency"


# -- requests --------------------------------------------------------------------------------------
def test_methods_bodies_and_url_form(gateway, http):
    results, summary = run(
        [
            http(
                host="echo.example.com",
                path="/anything",
                method="POST",
                body="plain text",
                headers={"Content-Type": "text/plain"},
                expect={"json": [{"query": "data", "equals": "plain text"}, {"query": "method", "equals": "POST"}]},
            ),
            http(
                host="echo.example.com",
                path="/anything",
                method="put",
                json_body={"hello": "mesh"},
                expect={"json": [{"query": "json.hello", "equals": "mesh"}, {"query": "method", "equals": "PUT"}]},
            ),
            http(
                host="echo.example.com",
                path="/anything",
                method="DELETE",
                headers={"X-Count": 3},
                expect={"json": [{"query": 'headers."X-Count"[0]', "equals": "3"}]},
            ),
            dict(address=gateway.address("http"), url="http://echo.example.com/anything?x=1&y=two", expect={"json": [{"query": "args.y[0]", "equals": "two"}]}),
            http(path="/status/200", method="HEAD", expect={"status": 200}),
        ]
    )
    assert summary["passed"] == 5, [r["failed_expectations"] for r in results]
    assert results[3]["url"] == "http://echo.example.com/anything?x=1&y=two"


def test_host_with_port_is_routed_by_the_port_wildcard_domain(gateway):
    result = one(dict(address=gateway.address("http"), host="httpbin.example.com:8080", path="/status/200", expect={"json": None, "status": 200}))
    assert result["passed"], result


# -- negative probes on the connection ---------------------------------------------------------------
def test_refused(closed_port):
    result = one(dict(address=closed_port, host="blocked.example.org", expect={"error": ["refused"]}))
    assert result["passed"], result
    assert result["error"]["kind"] == "refused"
    assert result["status"] is None


def test_expected_refusal_but_answered(http):
    result = one(http(expect={"error": ["refused", "reset"]}))
    assert not result["passed"]
    assert failed(result) == [("error", 200)]


def test_expected_refusal_but_other_failure(gateway, pki):
    result = one(
        dict(address="https://" + gateway.address("https"), host="unknown.example.com", tls={"ca_path": str(pki.ca_path)}, expect={"error": ["refused"]})
    )
    assert not result["passed"]
    assert failed(result) == [("error", "tls")]


def test_positive_probe_on_a_closed_port_reports_the_connection_failure(closed_port):
    result = one(dict(address=closed_port, host="x"))
    assert not result["passed"]
    assert failed(result) == [("connection", "refused")]


@pytest.fixture
def silent_server():
    """Accepts connections and never answers (a black hole), on loopback."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def test_timeout(silent_server):
    result = one(dict(address=silent_server, host="slow.example.org", timeout=0.3, expect={"error": ["timeout"]}))
    assert result["passed"], result
    assert result["error"]["kind"] == "timeout"
    assert one(dict(address=silent_server, host="slow.example.org", timeout=0.3, expect={"error": ["any"]}))["passed"]


# -- TLS ---------------------------------------------------------------------------------------------
def https(gateway, pki, host, listener="https", **kwargs):
    tls = kwargs.pop("tls", {"ca_path": str(pki.ca_path)})
    return dict(address="https://" + gateway.address(listener), host=host, path=kwargs.pop("path", "/status/200"), tls=tls, **kwargs)


@pytest.mark.parametrize("host", ["httpbin.example.com", "secure.example.com"])
def test_sni_selects_the_certificate(gateway, pki, host):
    result = one(https(gateway, pki, host, expect={"status": 200, "headers": {"server": "istio-envoy"}}))
    assert result["passed"], result


def test_sni_override_with_another_host_header(gateway, pki):
    probe = https(gateway, pki, "httpbin.example.com", tls={"ca_path": str(pki.ca_path), "sni": "secure.example.com"})
    assert one(probe)["passed"]
    probe["tls"]["sni"] = "unknown.example.com"
    result = one(probe)
    assert failed(result) == [("connection", "tls")]


def test_sni_without_a_server_fails_the_handshake(gateway, pki):
    result = one(https(gateway, pki, "unknown.example.com", expect={"error": ["tls"]}))
    assert result["passed"], result
    assert result["error"]["phase"] == "tls"


def test_certificate_verification_is_on_by_default(gateway, pki):
    result = one(https(gateway, pki, "secure.example.com", tls={}))
    assert not result["passed"]
    assert failed(result) == [("connection", "tls")]
    assert "CERTIFICATE_VERIFY_FAILED" in result["error"]["message"]


def test_certificate_verification_explicit_opt_out(gateway, pki):
    assert one(https(gateway, pki, "secure.example.com", tls={"validate_certs": False}))["passed"]
    # opted out at the module level, a probe turns it back on
    results, _summary = run([https(gateway, pki, "secure.example.com", tls={"validate_certs": True})], defaults={"tls": {"validate_certs": False}})
    assert failed(results[0]) == [("connection", "tls")]


def test_module_level_tls_defaults(gateway, pki):
    results, summary = run(
        [dict(address="https://" + gateway.address("mtls"), host="mtls.example.com", path="/headers")],
        defaults={"tls": {"ca_path": str(pki.ca_path), "client_cert": str(pki.client_cert), "client_key": str(pki.client_key)}},
    )
    assert summary["passed"] == 1, results


@pytest.mark.parametrize("bundle", [False, True])
def test_client_certificate(gateway, pki, bundle):
    tls = {"ca_path": str(pki.ca_path), "client_cert": str(pki.client_bundle if bundle else pki.client_cert)}
    if not bundle:
        tls["client_key"] = str(pki.client_key)
    result = one(
        https(
            gateway,
            pki,
            "mtls.example.com",
            listener="mtls",
            path="/headers",
            tls=tls,
            expect={"json": [{"query": "headers.Host[0]", "equals": "mtls.example.com"}]},
        )
    )
    assert result["passed"], result


def test_client_certificate_required(gateway, pki):
    assert one(https(gateway, pki, "mtls.example.com", listener="mtls", expect={"error": ["tls", "reset"]}))["passed"]
    result = one(https(gateway, pki, "mtls.example.com", listener="mtls"))
    assert not result["passed"]
    assert failed(result)[0][0] == "connection"


def test_client_certificate_from_another_ca_is_rejected(gateway, pki):
    tls = {"ca_path": str(pki.ca_path), "client_cert": str(pki.rogue_cert), "client_key": str(pki.rogue_key)}
    assert one(https(gateway, pki, "mtls.example.com", listener="mtls", tls=tls, expect={"error": ["tls", "reset"]}))["passed"]


# -- convergence -------------------------------------------------------------------------------------
def test_backend_started_late(gateway, trigger, late_backend):
    baseline = gateway.counter("cluster.late.upstream_cx_connect_fail")
    started = trigger(lambda: gateway.counter("cluster.late.upstream_cx_connect_fail") > baseline, late_backend)
    result = one(dict(address=gateway.address("late"), host="late.example.com", path="/status/200", expect={"status": 200}), retries=300, delay=0.1, timeout=60)
    assert started.result()
    assert result["passed"], result
    assert result["attempts"] >= 2
    assert result["time_to_first_success"] is not None


def test_route_changed_while_probing(route_switch, trigger):
    gateway = route_switch
    baseline = gateway.counter("http.switch.downstream_rq_4xx")
    changed = trigger(lambda: gateway.counter("http.switch.downstream_rq_4xx") > baseline, lambda: gateway.write_routes(2))
    results, summary = run(
        [dict(address=gateway.address("switch"), host="switch.example.com", path="/v2/status/200", expect={"status": 200})],
        retries=300,
        delay=0.1,
        consecutive_successes=3,
        timeout=60,
    )
    assert changed.result()
    assert summary["passed"] == 1, results
    assert results[0]["attempts"] >= 4  # at least one 404 before the three successes
    assert results[0]["consecutive_successes"] == 3
    # and the old route is gone
    assert one(dict(address=gateway.address("switch"), host="switch.example.com", path="/v1/status/200", expect={"status": 404}))["passed"]


def test_consecutive_successes_on_a_stable_route(http):
    result = one(http(), consecutive_successes=3, delay=0)
    assert result["passed"]
    assert result["attempts"] == 3
    assert result["consecutive_successes"] == 3


def test_attempts_are_bounded_by_retries(closed_port):
    result = one(dict(address=closed_port, host="x"), retries=2, delay=0, consecutive_successes=2)
    assert not result["passed"]
    assert result["attempts"] == 4
    assert not result["timed_out"]


def test_overall_timeout_stops_retrying(closed_port):
    result = one(dict(address=closed_port, host="x"), retries=100000, delay=0.05, timeout=0.5)
    assert not result["passed"]
    assert result["timed_out"]
    assert 1 < result["attempts"] < 100001


# -- concurrency, check mode, reports -------------------------------------------------------------
def test_many_probes_with_bounded_workers(http):
    probes = [http(name=f"probe-{i}", path=f"/status/{200 + i % 7}", expect={"status": 200 + i % 7}) for i in range(60)]
    results, summary = run(probes, workers=4)
    assert summary == dict(summary, total=60, passed=60, failed=0, skipped=0, attempts=60)
    assert [r["name"] for r in results] == [f"probe-{i}" for i in range(60)]


def test_check_mode_runs_only_safe_methods(http):
    results, summary = run(
        [
            http(method="GET"),
            http(method="HEAD"),
            http(method="OPTIONS", expect={"status": "2xx"}),
            http(host="echo.example.com", path="/anything", method="POST"),
        ],
        check_mode=True,
    )
    assert [r["skipped"] for r in results] == [False, False, False, True]
    assert results[3]["attempts"] == 0
    assert "check mode" in results[3]["skip_reason"]
    assert summary["skipped"] == 1
    assert summary["passed"] == 3
    assert summary["failed"] == 0


def test_junit_and_json_reports(http, tmp_path, closed_port):
    results, summary = run(
        [http(name="ok"), http(name="wrong status", expect={"status": 404}), dict(address=closed_port, name="post", host="x", method="POST")],
        check_mode=True,
    )
    path = probe_report.write_report(str(tmp_path / "report.xml"), "junit", results, summary)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["ok"].find("failure") is None and cases["ok"].find("skipped") is None
    assert cases["wrong status"].find("failure").get("message") == "status 200, expected 404"
    assert cases["wrong status"].find("failure").get("type") == "status"
    assert cases["post"].find("skipped") is not None
    data = json.loads(pathlib.Path(probe_report.write_report(str(tmp_path / "report.json"), "json", results, summary)).read_text())
    assert data["summary"]["failed"] == 1
    assert [p["name"] for p in data["probes"]] == ["ok", "wrong status", "post"]


def test_failure_message_lists_failing_probes(http, closed_port):
    results, summary = run([http(name="fine"), http(name="unrouted", path="/headers"), dict(name="gone", address=closed_port, host="x")])
    message = probe_runner.failure_message(results, summary)
    assert message.splitlines()[0] == "2 of 3 probes failed:"
    assert "- unrouted (via 127.0.0.1:" in message and "status 404, expected 2xx" in message
    assert "- gone (via " in message and "no response: refused during connect" in message
    assert "fine" not in message
