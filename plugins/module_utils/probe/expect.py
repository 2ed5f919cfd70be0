# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Expectations of a route probe: parsing (strict, before any request) and evaluation.

An expectation dict has these keys, all optional:

``status``
    an int, a list of ints and ranges, or a range string (``"200-299"``, ``"2xx"``).
    Default ``"2xx"`` unless ``error`` is given.
``headers``
    ``{name: value}``, exact (case-sensitive) value match; names are case-insensitive.
``headers_present`` / ``headers_absent``
    lists of header names.
``headers_regex``
    ``{name: regex}``, Python ``re.search`` on the value.
``body_contains`` / ``body_not_contains``
    a string or a list of strings.
``body_regex``
    a regex (``re.search``) or a list of them.
``json``
    a list of ``{query, equals, contains, regex, present}``: ``query`` is a JMESPath
    expression evaluated on the JSON body; at least one assertion per item.
``max_latency`` / ``min_latency``
    seconds, from connect to the end of the body (at most / at least; the latter proves
    that a delay, such as httpbin's ``/delay/1`` or an injected fault, took effect).
``error``
    a list of connection failure kinds (``refused``, ``reset``, ``timeout``, ``tls``,
    ``dns``, ``protocol``, ``error``, ``any``): the probe passes only when the request
    fails that way (blocked egress, closed port). Excludes every response expectation.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import traceback

from ansible_collections.meshops.istio.plugins.module_utils.probe.spec import ERROR_CHOICES, EXPECT_KEYS, JSON_KEYS

try:
    import jmespath

    HAS_JMESPATH = True
    JMESPATH_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the environment
    HAS_JMESPATH = False
    JMESPATH_IMPORT_ERROR = traceback.format_exc()

RESPONSE_KEYS = tuple(k for k in EXPECT_KEYS if k != "error")
_MISSING = object()


class ExpectationError(ValueError):
    """An expectation is malformed; raised before any request is sent."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_status_item(item, where):
    if _is_int(item):
        if not 100 <= item <= 599:
            raise ExpectationError("{0}: status {1} is not an HTTP status (100-599)".format(where, item))
        return (item, item)
    if isinstance(item, str):
        text = item.strip().lower()
        if re.match(r"^[1-5]xx$", text):
            base = int(text[0]) * 100
            return (base, base + 99)
        m = re.match(r"^(\d{3})\s*-\s*(\d{3})$", text)
        if m:
            low, high = int(m.group(1)), int(m.group(2))
            if low > high or low < 100 or high > 599:
                raise ExpectationError("{0}: status range {1!r} is empty or outside 100-599".format(where, item))
            return (low, high)
        if re.match(r"^\d{3}$", text):
            return _parse_status_item(int(text), where)
    raise ExpectationError("{0}: status {1!r} must be an int, a range such as '200-299' or '2xx', or a list of those".format(where, item))


def parse_status(value, where="expect"):
    """Return a list of inclusive (low, high) ranges."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ExpectationError("{0}: status list is empty".format(where))
    return [_parse_status_item(item, where) for item in items]


def describe_status(ranges):
    parts = []
    for low, high in ranges:
        if low == high:
            parts.append(str(low))
        elif high - low == 99 and low % 100 == 0:
            parts.append("{0}xx".format(low // 100))
        else:
            parts.append("{0}-{1}".format(low, high))
    return parts[0] if len(parts) == 1 else "one of " + ", ".join(parts)


def _str_list(value, key, where):
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise ExpectationError("{0}: {1} must be a string or a list of strings, got {2!r}".format(where, key, item))
    return items


def _compile(pattern, key, where):
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ExpectationError("{0}: {1} {2!r} is not a valid regular expression: {3}".format(where, key, pattern, exc)) from exc


def _str_dict(value, key, where):
    if not isinstance(value, dict):
        raise ExpectationError("{0}: {1} must be a mapping of header name to string".format(where, key))
    out = {}
    for name, item in value.items():
        if not isinstance(item, str):
            raise ExpectationError("{0}: {1}.{2} must be a string, got {3!r}".format(where, key, name, item))
        out[str(name).lower()] = item
    return out


def parse_expect(spec, where="expect"):
    """Validate and compile an expectation dict. Raises ExpectationError."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ExpectationError("{0} must be a mapping".format(where))
    spec = dict((k, v) for k, v in spec.items() if v is not None)
    unknown = sorted(set(spec) - set(EXPECT_KEYS))
    if unknown:
        raise ExpectationError("{0}: unknown expectation key(s) {1}; known keys: {2}".format(where, ", ".join(unknown), ", ".join(EXPECT_KEYS)))
    out = {}
    if "error" in spec:
        clash = sorted(k for k in spec if k in RESPONSE_KEYS)
        if clash:
            raise ExpectationError("{0}: 'error' (a connection failure) cannot be combined with response expectations {1}".format(where, ", ".join(clash)))
        kinds = _str_list(spec["error"], "error", where)
        bad = [k for k in kinds if k not in ERROR_CHOICES]
        if bad or not kinds:
            raise ExpectationError("{0}: error kinds {1} unknown; choose from {2}".format(where, ", ".join(bad), ", ".join(ERROR_CHOICES)))
        out["error"] = kinds
        return out
    out["status"] = parse_status(spec.get("status", "2xx"), where)
    if "headers" in spec:
        out["headers"] = _str_dict(spec["headers"], "headers", where)
    for key in ("headers_present", "headers_absent"):
        if key in spec:
            out[key] = [h.lower() for h in _str_list(spec[key], key, where)]
    if "headers_regex" in spec:
        out["headers_regex"] = dict(
            (name, (pattern, _compile(pattern, "headers_regex." + name, where)))
            for name, pattern in _str_dict(spec["headers_regex"], "headers_regex", where).items()
        )
    for key in ("body_contains", "body_not_contains"):
        if key in spec:
            out[key] = _str_list(spec[key], key, where)
    if "body_regex" in spec:
        out["body_regex"] = [(p, _compile(p, "body_regex", where)) for p in _str_list(spec["body_regex"], "body_regex", where)]
    if "json" in spec:
        out["json"] = _parse_json_items(spec["json"], where)
    for key in ("max_latency", "min_latency"):
        if key in spec:
            value = spec[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ExpectationError("{0}: {1} must be a positive number of seconds, got {2!r}".format(where, key, value))
            out[key] = float(value)
    if out.get("min_latency", 0) > out.get("max_latency", float("inf")):
        raise ExpectationError("{0}: min_latency {1} is above max_latency {2}".format(where, out["min_latency"], out["max_latency"]))
    return out


def _parse_json_items(items, where):
    if not isinstance(items, list) or not items:
        raise ExpectationError("{0}: json must be a non-empty list of {{query, equals|contains|regex|present}}".format(where))
    parsed = []
    for index, given in enumerate(items):
        at = "{0}: json[{1}]".format(where, index)
        if not isinstance(given, dict):
            raise ExpectationError("{0} must be a mapping".format(at))
        item = dict((k, v) for k, v in given.items() if v is not None)
        unknown = sorted(set(item) - set(JSON_KEYS))
        if unknown:
            raise ExpectationError("{0}: unknown key(s) {1}; known keys: {2}".format(at, ", ".join(unknown), ", ".join(JSON_KEYS)))
        query = item.get("query")
        if not isinstance(query, str) or not query:
            raise ExpectationError("{0}: query (a JMESPath expression) is required".format(at))
        if not any(k in item for k in ("equals", "contains", "regex", "present")):
            raise ExpectationError("{0}: give at least one of equals, contains, regex, present".format(at))
        if not HAS_JMESPATH:
            # the module reports missing_required_lib; evaluation fails each attempt
            compiled = None
        else:
            try:
                compiled = jmespath.compile(query)
            except Exception as exc:  # pylint: disable=broad-except
                raise ExpectationError("{0}: query {1!r} is not valid JMESPath: {2}".format(at, query, exc)) from exc
        entry = {"query": query, "compiled": compiled}
        for key in ("equals", "contains", "present"):
            if key in item:
                entry[key] = item[key]
        if "present" in entry and not isinstance(entry["present"], bool):
            raise ExpectationError("{0}: present must be true or false".format(at))
        if "regex" in item:
            entry["regex"] = (item["regex"], _compile(item["regex"], "regex", at))
        parsed.append(entry)
    return parsed


def uses_json(expect):
    return bool(expect.get("json"))


def _failure(key, expected, actual, message):
    return {"expectation": key, "expected": expected, "actual": actual, "message": message}


def _text(body):
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")


def _short(value, limit=200):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def evaluate(expect, outcome):
    """Return the failed expectations (a list of dicts) of one attempt's outcome."""
    if "error" in expect:
        kinds = expect["error"]
        if outcome["ok"]:
            return [
                _failure(
                    "error",
                    kinds,
                    outcome["status"],
                    "expected the connection to fail ({0}) but got HTTP {1}".format("/".join(kinds), outcome["status"]),
                )
            ]
        if "any" in kinds or outcome["error_kind"] in kinds:
            return []
        return [
            _failure(
                "error",
                kinds,
                outcome["error_kind"],
                "expected connection failure {0}, got {1} ({2})".format("/".join(kinds), outcome["error_kind"], outcome["error"]),
            )
        ]
    if not outcome["ok"]:
        return [
            _failure(
                "connection",
                "a response",
                outcome["error_kind"],
                "no response: {0} during {1} ({2})".format(outcome["error_kind"], outcome["phase"], outcome["error"]),
            )
        ]
    failures = []
    status = outcome["status"]
    if not any(low <= status <= high for low, high in expect["status"]):
        wanted = describe_status(expect["status"])
        failures.append(_failure("status", wanted, status, "status {0}, expected {1}".format(status, wanted)))
    headers = outcome["headers"]
    for name, value in expect.get("headers", {}).items():
        actual = headers.get(name)
        if actual != value:
            failures.append(_failure("headers", {name: value}, actual, "header {0}: {1!r}, expected {2!r}".format(name, actual, value)))
    for name in expect.get("headers_present", []):
        if name not in headers:
            failures.append(_failure("headers_present", name, None, "header {0} missing".format(name)))
    for name in expect.get("headers_absent", []):
        if name in headers:
            failures.append(_failure("headers_absent", name, headers[name], "header {0} present ({1!r}), expected absent".format(name, headers[name])))
    for name, (pattern, regex) in expect.get("headers_regex", {}).items():
        actual = headers.get(name)
        if actual is None or not regex.search(actual):
            failures.append(_failure("headers_regex", {name: pattern}, actual, "header {0}: {1!r} does not match /{2}/".format(name, actual, pattern)))
    text = None
    if any(k in expect for k in ("body_contains", "body_not_contains", "body_regex", "json")):
        text = _text(outcome["body"])
    for needle in expect.get("body_contains", []):
        if needle not in text:
            failures.append(_failure("body_contains", needle, _short(text), "body does not contain {0!r}".format(needle)))
    for needle in expect.get("body_not_contains", []):
        if needle in text:
            failures.append(_failure("body_not_contains", needle, _short(text), "body contains {0!r}".format(needle)))
    for pattern, regex in expect.get("body_regex", []):
        if not regex.search(text):
            failures.append(_failure("body_regex", pattern, _short(text), "body does not match /{0}/".format(pattern)))
    if expect.get("json"):
        failures.extend(_evaluate_json(expect["json"], text))
    if "max_latency" in expect and outcome["latency"] > expect["max_latency"]:
        failures.append(
            _failure(
                "max_latency",
                expect["max_latency"],
                round(outcome["latency"], 4),
                "latency {0:.3f}s above {1}s".format(outcome["latency"], expect["max_latency"]),
            )
        )
    if "min_latency" in expect and outcome["latency"] < expect["min_latency"]:
        failures.append(
            _failure(
                "min_latency",
                expect["min_latency"],
                round(outcome["latency"], 4),
                "latency {0:.3f}s below {1}s".format(outcome["latency"], expect["min_latency"]),
            )
        )
    return failures


def _evaluate_json(items, text):
    try:
        document = json.loads(text)
    except ValueError as exc:
        return [_failure("json", [i["query"] for i in items], _short(text), "body is not JSON ({0})".format(exc))]
    failures = []
    for item in items:
        if item["compiled"] is None:
            failures.append(_failure("json", item["query"], None, "JSON expectations need the Python library jmespath"))
            continue
        value = item["compiled"].search(document)
        query = item["query"]
        if "present" in item and (value is not None) != item["present"]:
            failures.append(
                _failure(
                    "json",
                    {"query": query, "present": item["present"]},
                    value,
                    "json {0}: {1}".format(query, "absent" if value is None else "present ({0})".format(_short(value))),
                )
            )
        if "equals" in item and value != item["equals"]:
            failures.append(
                _failure(
                    "json",
                    {"query": query, "equals": item["equals"]},
                    value,
                    "json {0}: {1}, expected {2}".format(query, _short(value), _short(item["equals"])),
                )
            )
        if "contains" in item:
            needle = item["contains"]
            ok = False
            if (isinstance(value, str) and isinstance(needle, str)) or isinstance(value, list) or (isinstance(value, dict) and isinstance(needle, str)):
                ok = needle in value
            if not ok:
                failures.append(
                    _failure(
                        "json",
                        {"query": query, "contains": needle},
                        value,
                        "json {0}: {1} does not contain {2}".format(query, _short(value), _short(needle)),
                    )
                )
        if "regex" in item:
            pattern, regex = item["regex"]
            if not isinstance(value, str) or not regex.search(value):
                failures.append(
                    _failure(
                        "json",
                        {"query": query, "regex": pattern},
                        value,
                        "json {0}: {1} does not match /{2}/".format(query, _short(value), pattern),
                    )
                )
    return failures
