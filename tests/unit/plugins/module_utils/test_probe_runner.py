"""Probe validation: every problem is reported before any request is sent."""

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.probe.runner import ProbeSpecError, check_settings, parse_address, prepare


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:8080", (None, "127.0.0.1", 8080)),
        ("gateway.local", (None, "gateway.local", None)),
        ("http://127.0.0.1", ("http", "127.0.0.1", None)),
        ("https://10.0.0.1:8443/", ("https", "10.0.0.1", 8443)),
        ("[::1]:80", (None, "::1", 80)),
        ("HTTPS://LB.example.net", ("https", "lb.example.net", None)),
    ],
)
def test_parse_address(text, parsed):
    assert parse_address(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://host:21", "must be http or https"),
        ("http://", "no host"),
        ("host:99999", "invalid address"),
        ("host:port", "invalid address"),
        ("http://h:80/status", "must be only scheme://host:port"),
        ("http://h:80?x=1", "must be only scheme://host:port"),
        ("http://user@h", "must be only scheme://host:port"),
        ("", "empty address"),
    ],
)
def test_bad_addresses(text, message):
    with pytest.raises(ValueError, match=".*" + message.replace("?", r"\?")):
        parse_address(text)


def prepared_one(probe, defaults=None, **settings):
    probes, _settings = prepare([probe], {"address": "127.0.0.1:8080"} if defaults is None else defaults, settings)
    return probes[0]


def test_request_defaults():
    probe = prepared_one({"host": "httpbin.example.com"})
    req = probe["request"]
    assert probe["name"] == "GET http://httpbin.example.com/"
    assert (req["scheme"], req["address_host"], req["address_port"], req["host"], req["path"], req["method"], req["sni"]) == (
        "http",
        "127.0.0.1",
        8080,
        "httpbin.example.com",
        "/",
        "GET",
        "httpbin.example.com",
    )
    assert req["validate_certs"] is True
    assert probe["expect"] == {"status": [(200, 299)]}


def test_host_defaults_to_the_address_with_its_port():
    assert prepared_one({})["request"]["host"] == "127.0.0.1:8080"
    assert prepared_one({}, {"address": "https://gw.example.net"})["request"]["host"] == "gw.example.net"
    assert prepared_one({}, {"address": "https://gw.example.net"})["request"]["address_port"] == 443


def test_sni_is_the_host_without_port_unless_set():
    assert prepared_one({"host": "a.example.com:8443", "scheme": "https"})["request"]["sni"] == "a.example.com"
    assert prepared_one({"host": "a.example.com", "scheme": "https", "tls": {"sni": "b.example.com"}})["request"]["sni"] == "b.example.com"


def test_url_form_sets_scheme_host_and_path():
    req = prepared_one({"url": "https://api.example.com/v1/items?limit=2"})["request"]
    assert (req["scheme"], req["host"], req["path"], req["address_host"], req["address_port"]) == (
        "https",
        "api.example.com",
        "/v1/items?limit=2",
        "127.0.0.1",
        8080,
    )
    # without any address, the URL's host is where the connection goes (plain curl)
    req = prepared_one({"url": "http://127.0.0.2:81/x"}, defaults={})["request"]
    assert (req["address_host"], req["address_port"], req["host"]) == ("127.0.0.2", 81, "127.0.0.2:81")


def test_addresses_per_scheme_from_discovery():
    defaults = {"addresses": {"http": "10.0.0.1:30080", "https": "10.0.0.1:30443"}}
    assert prepared_one({"host": "a"}, defaults)["request"]["address_port"] == 30080
    assert prepared_one({"host": "a", "scheme": "https"}, defaults)["request"]["address_port"] == 30443
    with pytest.raises(ProbeSpecError, match="the gateway has no https address"):
        prepared_one({"host": "a", "scheme": "https"}, {"addresses": {"http": "10.0.0.1:30080"}})


def test_json_body_sets_the_content_type():
    req = prepared_one({"json_body": {"a": [1]}, "method": "post"})["request"]
    assert (req["method"], req["body"], req["headers"]) == ("POST", b'{"a": [1]}', {"Content-Type": "application/json"})
    req = prepared_one({"json_body": [], "headers": {"content-type": "application/merge-patch+json"}})["request"]
    assert req["headers"] == {"content-type": "application/merge-patch+json"}


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        ({"url": "http://a/x", "host": "b"}, "url conflicts with host"),
        ({"url": "http://a/x", "path": "/y", "scheme": "http"}, "url conflicts with path, scheme"),
        ({"url": "ftp://a/x"}, "must be http(s)://host[:port]/path"),
        ({"url": "http://a:99999/"}, "invalid url"),
        ({"address": "http://h/x"}, "must be only scheme://host:port"),
        ({"address": "https://h", "scheme": "http"}, "scheme http conflicts with address"),
        ({"scheme": "gopher"}, "scheme must be http or https"),
        ({"host": "a b"}, "is not a valid authority"),
        ({"path": "status"}, "must start with /"),
        ({"path": "/a b"}, "must start with / and contain no whitespace"),
        ({"method": "GE T"}, "is not an HTTP method token"),
        ({"headers": {"Host": "x"}}, "set the Host header with 'host'"),
        ({"headers": {"bad name": "x"}}, "header name 'bad name' is invalid"),
        ({"headers": {"x": "a\r\nb"}}, "must be a single-line string"),
        ({"headers": ["x"]}, "headers must be a mapping"),
        ({"body": "x", "json_body": {}}, "body and json_body are mutually exclusive"),
        ({"body": {"a": 1}}, "body must be a string"),
        ({"scheme": "https", "tls": {"client_key": "/k"}}, "tls.client_key given without tls.client_cert"),
        ({"tls": {"ca_path": "/ca"}}, "tls settings given for an http probe"),
        ({"scheme": "https", "tls": {"verify": False}}, "unknown key(s) verify"),
        ({"scheme": "https", "tls": {"validate_certs": "no"}}, "tls.validate_certs must be true or false"),
        ({"timeout": -1}, "timeout must be a number > 0"),
        ({"timeout": 0}, "timeout must be a number > 0"),
        ({"expect": {"stauts": 200}}, "unknown expectation key(s) stauts"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ("GET /", "must be a mapping"),
    ],
)
def test_bad_probes(probe, message):
    with pytest.raises(ProbeSpecError) as exc:
        prepared_one(probe)
    assert message in str(exc.value)


def test_no_address_anywhere():
    with pytest.raises(ProbeSpecError, match="no gateway address"):
        prepare([{"host": "a"}], {}, {})


def test_every_problem_is_reported_at_once():
    with pytest.raises(ProbeSpecError) as exc:
        prepare([{"name": "one", "path": "x"}, {"name": "two", "expect": {"status": 700}}, {"name": "one"}], {"address": "h:1"}, {"timeout": -5, "workers": 0})
    errors = exc.value.errors
    assert errors[:2] == ["timeout must be a number > 0, got -5", "workers must be an integer >= 1, got 0"]
    assert any(e.startswith("probe 'one': path 'x'") for e in errors)
    assert any(e.startswith("probe 'two': expect: status 700") for e in errors)
    assert "probe name 'one' is used by probes [0, 2]" in errors


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"retries": -1}, "retries must be an integer >= 0"),
        ({"retries": 1.5}, "retries must be an integer >= 0"),
        ({"delay": -0.1}, "delay must be a number >= 0"),
        ({"timeout": 0}, "timeout must be a number > 0"),
        ({"consecutive_successes": 0}, "consecutive_successes must be an integer >= 1"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"request_timeout": -1}, "request_timeout must be a number > 0"),
        ({"delay": "1s"}, "delay must be a number >= 0"),
    ],
)
def test_bad_settings(settings, message):
    with pytest.raises(ProbeSpecError, match=message):
        check_settings(settings)


def test_empty_probe_list():
    with pytest.raises(ProbeSpecError, match="probes must be a non-empty list"):
        prepare([], {"address": "h:1"}, {})
