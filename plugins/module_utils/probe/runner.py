# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Route probes: validation of the whole probe set, convergence loop, concurrency, summary.

``prepare(probes, defaults, settings)`` checks everything and raises ProbeSpecError
(with every problem found) before a single request is sent. ``run(prepared, settings)``
then runs each probe in a bounded thread pool; a probe passes once it collected
``consecutive_successes`` passing attempts in a row, within ``consecutive_successes +
retries`` attempts and the overall ``timeout``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from ansible_collections.meshops.istio.plugins.module_utils.istio.vocab import HTTP_TOKEN
from ansible_collections.meshops.istio.plugins.module_utils.probe import http as probe_http
from ansible_collections.meshops.istio.plugins.module_utils.probe.expect import (
    ExpectationError,
    evaluate,
    parse_expect,
)
from ansible_collections.meshops.istio.plugins.module_utils.probe.spec import PROBE_KEYS, SETTINGS_DEFAULTS, SHARE_OPTIONS, SHARE_SAMPLES_LIMIT, TLS_KEYS

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ProbeSpecError(ValueError):
    """Invalid probes or settings; ``errors`` lists every problem."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(ProbeSpecError, self).__init__("; ".join(self.errors))


def parse_address(text, where="address"):
    """Parse ``host:port``, ``host``, ``[v6]:port`` or ``http(s)://host[:port][/]``.

    Returns (scheme or None, host, port or None).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("{0}: empty address".format(where))
    text = text.strip()
    explicit = "://" in text
    try:
        parts = urlsplit(text if explicit else "//" + text)
        port = parts.port
    except ValueError as exc:
        raise ValueError("{0}: invalid address {1!r}: {2}".format(where, text, exc)) from exc
    scheme = parts.scheme.lower() if explicit else None
    if explicit and scheme not in ("http", "https"):
        raise ValueError("{0}: scheme of {1!r} must be http or https".format(where, text))
    if not parts.hostname:
        raise ValueError("{0}: no host in {1!r}".format(where, text))
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError("{0}: {1!r} must be only scheme://host:port (put the path in 'path')".format(where, text))
    if re.search(r"\s", text):
        raise ValueError("{0}: {1!r} contains whitespace".format(where, text))
    return scheme, parts.hostname, port


def _num(value, name, minimum, strict, integer=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    if ok:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        raise ValueError("{0} must be {1} {2} {3}, got {4!r}".format(name, "an integer" if integer else "a number", ">" if strict else ">=", minimum, value))
    return int(value) if integer else float(value)


def check_settings(settings):
    """Return settings with defaults filled and types checked; raise ProbeSpecError."""
    out = dict(SETTINGS_DEFAULTS)
    out.update(dict((k, v) for k, v in (settings or {}).items() if v is not None))
    errors = []
    checks = (
        ("retries", 0, False, True),
        ("delay", 0, False, False),
        ("timeout", 0, True, False),
        ("consecutive_successes", 1, False, True),
        ("workers", 1, False, True),
        ("request_timeout", 0, True, False),
        ("body_limit", 1, False, True),
    )
    for name, minimum, strict, integer in checks:
        try:
            out[name] = _num(out[name], name, minimum, strict, integer)
        except ValueError as exc:
            errors.append(str(exc))
    if errors:
        raise ProbeSpecError(errors)
    return out


def _merge_tls(defaults, own, where, errors):
    tls = {"validate_certs": True, "ca_path": None, "client_cert": None, "client_key": None, "sni": None}
    for layer, name in ((defaults, "tls"), (own, where + ": tls")):
        if layer is None:
            continue
        if not isinstance(layer, dict):
            errors.append("{0} must be a mapping".format(name))
            continue
        unknown = sorted(set(layer) - set(TLS_KEYS))
        if unknown:
            errors.append("{0}: unknown key(s) {1}; known keys: {2}".format(name, ", ".join(unknown), ", ".join(TLS_KEYS)))
        for key in TLS_KEYS:
            if layer.get(key) is not None:
                tls[key] = layer[key]
    if tls["client_key"] and not tls["client_cert"]:
        errors.append("{0}: tls.client_key given without tls.client_cert".format(where))
    if not isinstance(tls["validate_certs"], bool):
        errors.append("{0}: tls.validate_certs must be true or false".format(where))
    return tls


def _prepare_one(raw, index, defaults, settings, errors):
    where = "probes[{0}]".format(index)
    if not isinstance(raw, dict):
        errors.append("{0} must be a mapping".format(where))
        return None
    raw = dict((k, v) for k, v in raw.items() if v is not None)
    unknown = sorted(set(raw) - set(PROBE_KEYS))
    if unknown:
        errors.append("{0}: unknown key(s) {1}; known keys: {2}".format(where, ", ".join(unknown), ", ".join(PROBE_KEYS)))
    if raw.get("name"):
        where = "probe {0!r}".format(raw["name"])
    n_errors = len(errors)

    scheme = raw.get("scheme")
    host = raw.get("host")
    path = raw.get("path")
    if "url" in raw:
        clash = [k for k in ("host", "path", "scheme") if k in raw]
        if clash:
            errors.append("{0}: url conflicts with {1}; give either url or host/path/scheme".format(where, ", ".join(clash)))
        try:
            parts = urlsplit(raw["url"])
            parts.port  # noqa: B018 - validates the port
        except (ValueError, TypeError, AttributeError) as exc:
            errors.append("{0}: invalid url {1!r}: {2}".format(where, raw["url"], exc))
            parts = None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
            hint = " (http://{0})".format(raw["url"]) if "://" not in str(raw["url"]) else ""
            errors.append("{0}: url {1!r} must be http(s)://host[:port]/path{2}".format(where, raw["url"], hint))
            return None  # host, path and address all come from the url: nothing more to check
        if parts is not None:
            scheme, host = parts.scheme, parts.netloc
            path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    address_text = raw.get("address", defaults.get("address"))
    explicit_address = address_text is not None
    if address_text is None and defaults.get("addresses"):
        address_text = defaults["addresses"].get((scheme or "http").lower())
        if address_text is None:
            errors.append("{0}: the gateway has no {1} address".format(where, scheme))
    elif address_text is None:
        if "url" in raw:
            address_text = raw["url"].split("://", 1)[-1].split("/", 1)[0]
        else:
            errors.append("{0}: no gateway address: set address (here or for the module) or url".format(where))
    addr_scheme, addr_host, addr_port = None, None, None
    if address_text is not None:
        try:
            addr_scheme, addr_host, addr_port = parse_address(address_text, where + ": address")
        except ValueError as exc:
            errors.append(str(exc))
    if scheme is not None and addr_scheme is not None and scheme != addr_scheme:
        errors.append("{0}: scheme {1} conflicts with address {2!r}".format(where, scheme, address_text))
    scheme = (scheme or addr_scheme or "http").lower()
    if scheme not in ("http", "https"):
        errors.append("{0}: scheme must be http or https, got {1!r}".format(where, scheme))
    if addr_port is None:
        addr_port = 443 if scheme == "https" else 80
    if host is None and addr_host is not None:
        default_port = 443 if scheme == "https" else 80
        host = addr_host if addr_port == default_port else "{0}:{1}".format(addr_host, addr_port)
    if host is not None and (not isinstance(host, str) or not host or re.search(r"[\s/]", host)):
        errors.append("{0}: host {1!r} is not a valid authority".format(where, host))
    path = "/" if path is None else path
    if not isinstance(path, str) or not (path.startswith("/") or path == "*") or re.search(r"[\s\x00-\x1f]", path):
        errors.append("{0}: path {1!r} must start with / and contain no whitespace".format(where, path))
    method = str(raw.get("method", "GET")).upper()
    if not HTTP_TOKEN.match(method):
        errors.append("{0}: method {1!r} is not an HTTP method token".format(where, raw.get("method")))
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict):
        errors.append("{0}: headers must be a mapping".format(where))
        headers = {}
    clean_headers = {}
    for name, value in headers.items():
        if not HTTP_TOKEN.match(str(name)):
            errors.append("{0}: header name {1!r} is invalid".format(where, name))
        elif str(name).lower() == "host":
            errors.append("{0}: set the Host header with 'host', not in headers".format(where))
        elif not isinstance(value, (str, int, float)) or isinstance(value, bool) or re.search(r"[\r\n]", str(value)):
            errors.append("{0}: header {1} must be a single-line string".format(where, name))
        else:
            clean_headers[str(name)] = str(value)
    body = None
    if "body" in raw and "json_body" in raw:
        errors.append("{0}: body and json_body are mutually exclusive".format(where))
    elif "body" in raw:
        if not isinstance(raw["body"], str):
            errors.append("{0}: body must be a string (use json_body for structured data)".format(where))
        else:
            body = raw["body"].encode("utf-8")
    elif "json_body" in raw:
        body = json.dumps(raw["json_body"]).encode("utf-8")
        if not any(k.lower() == "content-type" for k in clean_headers):
            clean_headers["Content-Type"] = "application/json"
    tls = _merge_tls(defaults.get("tls"), raw.get("tls"), where, errors)
    if scheme == "http" and any(v is not None for v in (raw.get("tls") or {}).values()):
        errors.append("{0}: tls settings given for an http probe".format(where))
    timeout = settings["request_timeout"]
    if "timeout" in raw:
        try:
            timeout = _num(raw["timeout"], where + ": timeout", 0, True)
        except ValueError as exc:
            errors.append(str(exc))
    try:
        expect = parse_expect(raw.get("expect"), where + ": expect")
    except ExpectationError as exc:
        errors.append(str(exc))
        expect = None
    share = _check_share(raw.get("share"), where, errors)
    via = raw.get("via", defaults.get("via"))
    if len(errors) > n_errors:
        return None
    sni = tls["sni"] or re.sub(r":\d+$", "", host).strip("[]")
    name = raw.get("name") or "{0} {1}://{2}{3}".format(method, scheme, host, path)
    return {
        "name": name,
        "index": index,
        "expect": expect,
        "expect_spec": raw.get("expect") or {},
        "share": share,
        "via": via,
        "request": {
            "scheme": scheme,
            "address_host": addr_host,
            "address_port": addr_port,
            "host": host,
            "path": path,
            "method": method,
            "headers": clean_headers,
            "body": body,
            "timeout": timeout,
            "body_limit": settings["body_limit"],
            "sni": sni,
            "validate_certs": tls["validate_certs"],
            "ca_path": tls["ca_path"],
            "client_cert": tls["client_cert"],
            "client_key": tls["client_key"],
            "explicit_address": explicit_address,
        },
    }


def _check_share(share, where, errors):
    """``{samples, min, max}``: a bounded batch and a fraction range; None without one."""
    if share is None:
        return None
    if not isinstance(share, dict):
        errors.append("{0}: share must be a mapping {{samples, min, max}}".format(where))
        return None
    samples = share.get("samples")
    low, high = (SHARE_OPTIONS[key]["default"] if share.get(key) is None else share[key] for key in ("min", "max"))
    if not isinstance(samples, int) or isinstance(samples, bool) or not 1 <= samples <= SHARE_SAMPLES_LIMIT:
        errors.append("{0}: share.samples must be an integer from 1 to {1}, got {2!r}".format(where, SHARE_SAMPLES_LIMIT, samples))
        return None
    for key, value in (("min", low), ("max", high)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            errors.append("{0}: share.{1} must be a fraction from 0 to 1, got {2!r}".format(where, key, value))
            return None
    if low > high:
        errors.append("{0}: share.min {1} is above share.max {2}".format(where, low, high))
        return None
    return {"samples": samples, "min": float(low), "max": float(high)}


def _attempt(probe, attempt_req, deadline, clock):
    """One attempt: a request, or with ``share`` a batch of requests; (outcome, failures, share result)."""
    share = probe.get("share")
    if share is None:
        outcome = probe_http.perform(attempt_req)
        return outcome, evaluate(probe["expect"], outcome), None
    matched = sent = 0
    outcome = None
    while sent < share["samples"] and (sent == 0 or clock() < deadline):
        outcome = probe_http.perform(attempt_req)
        sent += 1
        if not evaluate(probe["expect"], outcome):
            matched += 1
    fraction = float(matched) / sent
    result = {"samples": sent, "matched": matched, "fraction": round(fraction, 4)}
    failures = []
    if sent < share["samples"]:
        failures.append(
            {
                "expectation": "share",
                "expected": share["samples"],
                "actual": sent,
                "message": "only {0} of {1} samples sent before the timeout".format(sent, share["samples"]),
            }
        )
    elif not share["min"] <= fraction <= share["max"]:
        failures.append(
            {
                "expectation": "share",
                "expected": "{0}-{1}".format(share["min"], share["max"]),
                "actual": result["fraction"],
                "message": "{0} of {1} answers met the expectations ({2:.1%}), expected {3:.1%} to {4:.1%}".format(
                    matched, sent, fraction, share["min"], share["max"]
                ),
            }
        )
    return outcome, failures, result


def prepare(probes, defaults=None, settings=None):
    """Validate every probe; return (prepared probes, settings). Raises ProbeSpecError."""
    defaults = defaults or {}
    try:
        settings = check_settings(settings)
    except ProbeSpecError as exc:
        errors = exc.errors
        settings = dict(SETTINGS_DEFAULTS)
    else:
        errors = []
    if not isinstance(probes, list) or not probes:
        errors.append("probes must be a non-empty list")
        raise ProbeSpecError(errors)
    if defaults.get("address") is not None:
        try:
            parse_address(defaults["address"])
        except ValueError as exc:
            errors.append(str(exc))
    prepared = [_prepare_one(raw, i, defaults, settings, errors) for i, raw in enumerate(probes)]
    names = {}
    for i, raw in enumerate(probes):
        if isinstance(raw, dict) and raw.get("name"):
            names.setdefault(raw["name"], []).append(i)
    for name, indexes in sorted(names.items()):
        if len(indexes) > 1:
            errors.append("probe name {0!r} is used by probes {1}".format(name, indexes))
    if errors:
        raise ProbeSpecError(errors)
    return prepared, settings


def display_url(request):
    """What the probe asks for, curl-style: url plus the address it connects to."""
    return "{0}://{1}{2}".format(request["scheme"], request["host"], request["path"])


def _public_outcome(outcome):
    if outcome is None:
        return {}
    if not outcome["ok"]:
        return {
            "status": None,
            "headers": {},
            "latency": round(outcome["latency"], 6),
            "error": {"kind": outcome["error_kind"], "message": outcome["error"], "phase": outcome["phase"]},
            "body_excerpt": None,
        }
    body = outcome["body"].decode("utf-8", "replace")
    return {
        "status": outcome["status"],
        "reason": outcome["reason"],
        "headers": outcome["headers"],
        "latency": round(outcome["latency"], 6),
        "error": None,
        "body_excerpt": body[:512],
    }


def run_probe(probe, settings, deadline, clock=time.monotonic, sleep=time.sleep):
    """Run one probe until it converges, exhausts its attempts or passes the deadline."""
    req = probe["request"]
    needed = settings["consecutive_successes"]
    max_attempts = needed + settings["retries"]
    start = clock()
    attempts = 0
    streak = 0
    first_success = None
    outcome = None
    failures = []
    share = None
    timed_out = False
    while attempts < max_attempts:
        if attempts and clock() >= deadline:
            timed_out = True
            break
        attempts += 1
        attempt_req = req
        remaining = deadline - clock()
        if 0 < remaining < req["timeout"]:
            attempt_req = dict(req, timeout=remaining)
        outcome, failures, share = _attempt(probe, attempt_req, deadline, clock)
        if not failures:
            streak += 1
            if first_success is None:
                first_success = clock() - start
            if streak >= needed:
                break
        else:
            streak = 0
        if attempts < max_attempts:
            pause = min(settings["delay"], max(0.0, deadline - clock()))
            if pause > 0:
                sleep(pause)
    passed = streak >= needed
    if not passed and not failures and outcome is not None:
        failures = [
            {
                "expectation": "consecutive_successes",
                "expected": needed,
                "actual": streak,
                "message": "only {0} consecutive successes of {1} before {2}".format(
                    streak, needed, "the timeout" if timed_out or clock() >= deadline else "running out of attempts"
                ),
            }
        ]
    result = {
        "name": probe["name"],
        "url": display_url(req),
        "address": "{0}:{1}".format(req["address_host"], req["address_port"]),
        "method": req["method"],
        "passed": passed,
        "skipped": False,
        "attempts": attempts,
        "consecutive_successes": streak,
        "time_to_first_success": None if first_success is None else round(first_success, 6),
        "duration": round(clock() - start, 6),
        "timed_out": timed_out,
        "failed_expectations": [] if passed else failures,
        "expect": probe["expect_spec"],
    }
    if share is not None:
        result["share"] = share
    result.update(_public_outcome(outcome))
    return result


def skipped_result(probe, reason):
    req = probe["request"]
    return {
        "name": probe["name"],
        "url": display_url(req),
        "address": "{0}:{1}".format(req["address_host"], req["address_port"]),
        "method": req["method"],
        "passed": False,
        "skipped": True,
        "skip_reason": reason,
        "attempts": 0,
        "consecutive_successes": 0,
        "time_to_first_success": None,
        "duration": 0.0,
        "timed_out": False,
        "failed_expectations": [],
        "expect": probe["expect_spec"],
        "status": None,
        "headers": {},
        "latency": None,
        "error": None,
        "body_excerpt": None,
    }


def run(prepared, settings, check_mode=False):
    """Run prepared probes concurrently; return (results in input order, summary)."""
    start = time.monotonic()
    deadline = start + settings["timeout"]
    results = [None] * len(prepared)
    todo = []
    for i, probe in enumerate(prepared):
        if check_mode and probe["request"]["method"] not in SAFE_METHODS:
            results[i] = skipped_result(probe, "check mode: {0} is not a safe method".format(probe["request"]["method"]))
        else:
            todo.append(i)
    if todo:
        workers = min(settings["workers"], len(todo))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = dict((i, pool.submit(run_probe, prepared[i], settings, deadline)) for i in todo)
            for i, future in futures.items():
                results[i] = future.result()
    summary = summarize(results, time.monotonic() - start)
    return results, summary


def summarize(results, duration):
    passed = sum(1 for r in results if r["passed"])
    skipped = sum(1 for r in results if r["skipped"])
    first = [r["time_to_first_success"] for r in results if r["time_to_first_success"] is not None]
    return {
        "total": len(results),
        "passed": passed,
        "failed": len(results) - passed - skipped,
        "skipped": skipped,
        "attempts": sum(r["attempts"] for r in results),
        "duration": round(duration, 6),
        "max_time_to_first_success": round(max(first), 6) if first else None,
    }


def failure_message(results, summary):
    """Readable message: one line per failing probe with what failed and, if known, why."""
    failing = [r for r in results if not r["passed"] and not r["skipped"]]
    lines = ["{0} of {1} probes failed:".format(len(failing), summary["total"])]
    for r in failing:
        what = "; ".join(f["message"] for f in r["failed_expectations"]) or "failed"
        line = "- {0} (via {1}, {2} attempt{3}): {4}".format(r["name"], r["address"], r["attempts"], "" if r["attempts"] == 1 else "s", what)
        if r.get("explanation_text"):
            line += " -- " + r["explanation_text"]
        lines.append(line)
    return "\n".join(lines)
