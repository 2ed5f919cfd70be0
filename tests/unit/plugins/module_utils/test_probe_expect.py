"""Expectations of route probes: strict parsing and evaluation of one attempt's outcome."""

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.probe.expect import ExpectationError, describe_status, evaluate, parse_expect, parse_status


def response(status=200, headers=None, body=b"", latency=0.01):
    return {"ok": True, "status": status, "reason": "", "headers": headers or {}, "body": body, "latency": latency}


def failure(kind="refused", phase="connect"):
    return {"ok": False, "error_kind": kind, "error": "ConnectionRefusedError: nope", "phase": phase, "latency": 0.001}


@pytest.mark.parametrize(
    ("value", "ranges"),
    [
        (200, [(200, 200)]),
        ("404", [(404, 404)]),
        ([200, 204], [(200, 200), (204, 204)]),
        ("2xx", [(200, 299)]),
        ("5XX", [(500, 599)]),
        ("200-399", [(200, 399)]),
        (["2xx", 404, "500 - 503"], [(200, 299), (404, 404), (500, 503)]),
    ],
)
def test_status_forms(value, ranges):
    assert parse_status(value) == ranges


@pytest.mark.parametrize("value", [99, 600, "abc", "300-200", "6xx", [], True, 200.5, {"min": 200}, "20x"])
def test_bad_status(value):
    with pytest.raises(ExpectationError):
        parse_status(value)


@pytest.mark.parametrize(("ranges", "text"), [([(200, 200)], "200"), ([(200, 299)], "2xx"), ([(200, 204), (404, 404)], "one of 200-204, 404")])
def test_describe_status(ranges, text):
    assert describe_status(ranges) == text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"stauts": 200}, "unknown expectation key(s) stauts"),
        ({"error": ["refused"], "status": 200}, "'error' (a connection failure) cannot be combined with response expectations status"),
        ({"error": ["closed"]}, "error kinds closed unknown"),
        ({"error": []}, "error kinds"),
        ({"headers": ["server"]}, "headers must be a mapping"),
        ({"headers": {"server": 1}}, "headers.server must be a string"),
        ({"headers_present": [1]}, "headers_present must be a string or a list of strings"),
        ({"headers_regex": {"a": "("}}, "is not a valid regular expression"),
        ({"body_regex": ["[a"]}, "is not a valid regular expression"),
        ({"json": []}, "json must be a non-empty list"),
        ({"json": [{"equals": 1}]}, "query (a JMESPath expression) is required"),
        ({"json": [{"query": "a"}]}, "give at least one of equals, contains, regex, present"),
        ({"json": [{"query": "a", "eq": 1}]}, "unknown key(s) eq"),
        ({"json": [{"query": "a[", "equals": 1}]}, "is not valid JMESPath"),
        ({"json": [{"query": "a", "present": "yes"}]}, "present must be true or false"),
        ({"max_latency": -1}, "max_latency must be a positive number"),
        ({"max_latency": 0}, "max_latency must be a positive number"),
        ({"max_latency": True}, "max_latency must be a positive number"),
        ({"min_latency": -2}, "min_latency must be a positive number"),
        ({"min_latency": 2, "max_latency": 1}, "min_latency 2.0 is above max_latency 1.0"),
        ("status: 200", "must be a mapping"),
    ],
)
def test_bad_expectations(spec, message):
    with pytest.raises(ExpectationError) as exc:
        parse_expect(spec, "probe 'p': expect")
    assert message in str(exc.value)
    assert str(exc.value).startswith("probe 'p': expect")


def test_defaults_and_none_values():
    assert parse_expect(None) == {"status": [(200, 299)]}
    assert parse_expect({"status": None, "headers": None}) == {"status": [(200, 299)]}


def test_header_names_are_case_insensitive():
    expect = parse_expect({"headers": {"Server": "istio-envoy"}, "headers_present": ["X-Envoy-Upstream-Service-Time"]})
    assert evaluate(expect, response(headers={"server": "istio-envoy", "x-envoy-upstream-service-time": "3"})) == []


def test_all_failures_are_reported_with_actual_values():
    expect = parse_expect({"status": 200, "headers": {"server": "istio-envoy"}, "headers_absent": ["x-debug"], "body_contains": "ok", "max_latency": 0.5})
    failures = evaluate(expect, response(503, {"server": "envoy", "x-debug": "1"}, b"upstream connect error", latency=0.75))
    assert [(f["expectation"], f["actual"]) for f in failures] == [
        ("status", 503),
        ("headers", "envoy"),
        ("headers_absent", "1"),
        ("body_contains", "upstream connect error"),
        ("max_latency", 0.75),
    ]
    assert failures[0]["message"] == "status 503, expected 200"


def test_connection_failure_of_a_positive_probe():
    (f,) = evaluate(parse_expect({"status": 200}), failure("reset", "receive"))
    assert (f["expectation"], f["actual"]) == ("connection", "reset")
    assert f["message"].startswith("no response: reset during receive")


@pytest.mark.parametrize(
    ("kinds", "actual", "passes"),
    [(["refused"], "refused", True), (["reset", "tls"], "tls", True), (["any"], "timeout", True), (["refused"], "timeout", False)],
)
def test_negative_probes(kinds, actual, passes):
    assert (evaluate(parse_expect({"error": kinds}), failure(actual)) == []) is passes


def test_negative_probe_that_got_an_answer():
    (f,) = evaluate(parse_expect({"error": ["refused"]}), response(404))
    assert (f["expectation"], f["actual"]) == ("error", 404)


def test_json_contains_on_strings_lists_and_objects():
    body = b'{"s": "hello mesh", "l": [1, 2], "o": {"k": 1}, "n": 3}'
    expect = parse_expect(
        {"json": [{"query": "s", "contains": "mesh"}, {"query": "l", "contains": 2}, {"query": "o", "contains": "k"}, {"query": "n", "contains": 3}]}
    )
    failures = evaluate(expect, response(body=body))
    assert [(f["expected"]["query"], f["actual"]) for f in failures] == [("n", 3)]


def test_json_regex_needs_a_string():
    expect = parse_expect({"json": [{"query": "n", "regex": "3"}]})
    assert evaluate(expect, response(body=b'{"n": 3}'))[0]["actual"] == 3
