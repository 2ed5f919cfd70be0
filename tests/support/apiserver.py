"""A real Kubernetes API server for the tests: etcd and kube-apiserver on loopback (the command
lines of ``meshops_dev.kubeapi``, shared with the upstream-Envoy lab), static token, everything
allowed."""

import ssl
import urllib.request

import yaml
from kubernetes import client as k8s

from meshops_dev import kubeapi, kubernetes
from meshops_dev.local import wait_for
from tests.support.ports import free_port
from tests.support.processes import Process


class ApiServer:
    """etcd and kube-apiserver on loopback, static token auth, everything allowed."""

    token = "route-verify-test-token"

    def __init__(self, root, extra_args=(), tokens=()):
        self.root = root
        self.extra_args = tuple(extra_args)  # more kube-apiserver flags (an audit log, ...)
        self.tokens = list(tokens)  # (token, user) pairs besides the admin's
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.procs = []

    def start(self):
        binaries = kubernetes.apiserver_binaries(kubectl=False)
        users = "".join(f'{token},{user},{user},"system:masters"\n' for token, user in self.tokens)
        (self.root / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n' + users)
        server = kubeapi.ApiServer(
            self.root,
            self.port,
            free_port(),
            free_port(),
            auth_flags=(
                f"--cert-dir={self.root / 'certs'}",
                "--service-node-port-range=1024-65535",
                "--authorization-mode=AlwaysAllow",
                f"--token-auth-file={self.root / 'tokens.csv'}",
                "--enable-priority-and-fairness=false",
                *self.extra_args,
            ),
        )
        self.procs.append(Process(server.etcd_command(binaries["etcd"]), self.root / "etcd.log"))
        self.procs.append(Process(server.apiserver_command(binaries["kube-apiserver"]), self.root / "kube-apiserver.log"))
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
