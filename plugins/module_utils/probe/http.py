# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One HTTP(S) exchange with a gateway, on the standard library only.

The connection goes to the gateway *address* while the request carries its own
Host header and, for HTTPS, its own SNI and certificate name: what
``curl --resolve host:port:address`` does. Failures are classified so that
negative probes can expect them (``refused``, ``reset``, ``timeout``, ``tls``,
``dns``, ``protocol``, ``error``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import socket
import ssl
import threading
import time

USER_AGENT = "meshops-istio-route-verify/1.0"
ERROR_KINDS = ("refused", "reset", "timeout", "tls", "dns", "protocol", "error")

_CONTEXTS = {}
_CONTEXTS_LOCK = threading.Lock()


def tls_context(validate_certs=True, ca_path=None, client_cert=None, client_key=None):
    """Return a cached client SSLContext for these settings (contexts are thread-safe)."""
    key = (bool(validate_certs), ca_path, client_cert, client_key)
    with _CONTEXTS_LOCK:
        ctx = _CONTEXTS.get(key)
        if ctx is None:
            ctx = ssl.create_default_context(cafile=ca_path) if validate_certs else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if not validate_certs:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if client_cert:
                ctx.load_cert_chain(client_cert, keyfile=client_key)
            ctx.set_alpn_protocols(["http/1.1"])
            _CONTEXTS[key] = ctx
    return ctx


def _classify(exc, phase):
    """Map an exception raised in ``phase`` to one of ERROR_KINDS."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if phase == "connect" and isinstance(exc, ConnectionRefusedError):
        return "refused"
    if phase == "tls" or isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, http.client.HTTPException):
        return "protocol"
    return "error"


def _decode_headers(pairs):
    headers = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        headers[name] = value if name not in headers else headers[name] + ", " + value
    return headers


def perform(req):
    """Send one request described by ``req`` (a dict) and return a result dict.

    ``req`` keys: scheme, address_host, address_port, host (Host header), path,
    method, headers (dict), body (bytes or None), timeout (seconds), body_limit,
    and for HTTPS: sni, validate_certs, ca_path, client_cert, client_key.

    The result has ``ok`` (a response was received), ``latency`` (seconds from
    connect to the end of the body) and either ``status``, ``reason``,
    ``headers``, ``body`` (bytes, at most body_limit) and ``body_truncated``, or
    ``error_kind``, ``error`` and ``phase``.
    """
    phase = "connect"
    sock = None
    conn = None
    start = time.monotonic()
    try:
        sock = socket.create_connection((req["address_host"], req["address_port"]), timeout=req["timeout"])
        if req["scheme"] == "https":
            phase = "tls"
            ctx = tls_context(req.get("validate_certs", True), req.get("ca_path"), req.get("client_cert"), req.get("client_key"))
            sock = ctx.wrap_socket(sock, server_hostname=req.get("sni") or None)
        phase = "send"
        conn = http.client.HTTPConnection(req["address_host"], req["address_port"], timeout=req["timeout"])
        conn.sock = sock
        conn.putrequest(req["method"], req["path"], skip_host=True, skip_accept_encoding=True)
        headers = {"host": req["host"], "user-agent": USER_AGENT, "accept": "*/*", "connection": "close"}
        for name, value in (req.get("headers") or {}).items():
            headers[name.lower()] = value
        body = req.get("body")
        if body is not None:
            headers["content-length"] = str(len(body))
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        phase = "receive"
        resp = conn.getresponse()
        limit = req.get("body_limit", 1048576)
        data = b"" if req["method"] == "HEAD" else resp.read(limit + 1)
        return {
            "ok": True,
            "status": resp.status,
            "reason": resp.reason,
            "http_version": "HTTP/1.1" if resp.version == 11 else "HTTP/1.0",
            "headers": _decode_headers(resp.getheaders()),
            "body": data[:limit],
            "body_truncated": len(data) > limit,
            "latency": time.monotonic() - start,
        }
    except Exception as exc:  # pylint: disable=broad-except
        return {
            "ok": False,
            "error_kind": _classify(exc, phase),
            "error": "{0}: {1}".format(type(exc).__name__, exc),
            "phase": phase,
            "latency": time.monotonic() - start,
        }
    finally:
        if conn is not None:
            conn.close()
        elif sock is not None:
            sock.close()
