"""A real kube-apiserver (and etcd) on loopback for the modules and playbooks that talk to a
cluster, with an audit log of every request, so a test can count what reached the server."""

import json

import pytest

from tests.support.apiserver import ApiServer

AUDIT_POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n"
WATCHED_USER = "site-test"


class AuditedApiServer(ApiServer):
    watched_token = "site-test-token"

    def requests_of(self, user=WATCHED_USER):
        """The requests the API server received from a user (its audit log)."""
        path = self.root / "audit.log"
        if not path.exists():
            return []
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [e for e in events if (e.get("user") or {}).get("username") == user and e.get("stage") == "ResponseComplete"]

    def watched_auth(self):
        return {"host": self.url, "api_key": self.watched_token, "validate_certs": False}


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster-api")
    (root / "audit-policy.yaml").write_text(AUDIT_POLICY)
    server = AuditedApiServer(
        root,
        extra_args=[f"--audit-policy-file={root / 'audit-policy.yaml'}", f"--audit-log-path={root / 'audit.log'}", "--audit-log-mode=blocking"],
        tokens=[(AuditedApiServer.watched_token, WATCHED_USER)],
    )
    server.start()
    yield server
    server.stop()
