"""A real kube-apiserver (and etcd) on loopback for the modules that talk to a cluster."""

import pytest

from tests.integration.route_verify.conftest import ApiServer


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster-api")
    server = ApiServer(root)
    server.start()
    yield server
    server.stop()
