"""A real Kubernetes API server on loopback (etcd + kube-apiserver of ``kubernetes.apiserver_binaries()``),
for the upstream-Envoy lab and the tests: one set of command lines, two ways of authenticating.

``ApiServer.commands()`` returns the argv of etcd and kube-apiserver; the caller starts them with
its own process handling (the lab keeps pids across invocations, the tests hold handles).
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from . import errors

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclasses.dataclass
class ApiServer:
    """Where and how to run it. ``auth_flags`` choose the authentication (client certificates of
    the lab's CA, or a static token file) and the authorization mode."""

    root: Path
    port: int
    etcd_client_port: int
    etcd_peer_port: int
    service_cidr: str = "10.96.0.0/16"
    auth_flags: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    def service_account_key(self) -> tuple[Path, Path]:
        """(private, public) key that signs service-account tokens; made once with openssl."""
        key, pub = self.root / "sa.key", self.root / "sa.pub"
        if not pub.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            for cmd in (["openssl", "genrsa", "-out", key, "2048"], ["openssl", "rsa", "-in", key, "-pubout", "-out", pub]):
                res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, check=False)
                if res.returncode != 0:
                    raise errors.DevError(f"{' '.join(map(str, cmd))} failed: {res.stderr.strip()}")
        return key, pub

    def etcd_command(self, etcd: Path) -> list[str]:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        return [
            str(etcd),
            "--name=default",
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--log-level=warn",
        ]

    def apiserver_command(self, kube_apiserver: Path) -> list[str]:
        key, pub = self.service_account_key()
        return [
            str(kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pub}",
            f"--service-account-signing-key-file={key}",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--allow-privileged=true",
            *self.auth_flags,
        ]
