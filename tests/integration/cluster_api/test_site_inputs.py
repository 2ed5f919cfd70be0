"""site.yml refuses bad input before its first request to any cluster.

Every host of the inventory is a cluster with one class of bad input (the classes of
tests/fixtures/bad_inputs.py), reached the way AWX's Kubernetes bearer-token
credential reaches a cluster (K8S_AUTH_* environment, no kubeconfig). The API server's audit log
counts the requests of that token: none may arrive. A module run with the same credential
proves the count sees requests.
"""

import json
import sys

import pytest
import yaml

from tests.fixtures.bad_inputs import CLASSES
from tests.helpers import REPO, run_playbook

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def credential_env(apiserver):
    auth = apiserver.watched_auth()
    return {"K8S_AUTH_HOST": auth["host"], "K8S_AUTH_API_KEY": auth["api_key"], "K8S_AUTH_VERIFY_SSL": "false"}


def inventory(tmp_path, hosts):
    data = {
        "all": {
            "children": {"clusters": {"hosts": hosts}},
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_bad_input_on_any_cluster_stops_site_yml_before_a_single_request(apiserver, tmp_path):
    hosts = {f"cluster-{i:02d}": changes for i, (_role, changes, _message) in enumerate(CLASSES)}
    before = len(apiserver.requests_of())
    rc, output, stderr = run_playbook(REPO / "site.yml", env=credential_env(apiserver), inventory=inventory(tmp_path, hosts), timeout=900)
    assert rc != 0, stderr[-2000:]
    assert apiserver.requests_of()[before:] == [], "site.yml sent requests to the API server"
    # every host failed in the first play, on its own problem
    (play, *rest) = output["plays"]
    assert play["play"]["name"] == "Check the inputs of every role on every cluster before changing anything"
    assert rest == [] or all(not p["tasks"] for p in rest), [p["play"]["name"] for p in rest]
    failures = {}
    for task in play["tasks"]:
        for host, result in task["hosts"].items():
            if result.get("failed"):
                failures[host] = result["msg"]
    for i, (_role, _changes, message) in enumerate(CLASSES):
        host = f"cluster-{i:02d}"
        assert host in failures, json.dumps(output["stats"])[:2000]
        assert "nothing was changed on any cluster" in failures[host]
        assert message in failures[host], failures[host]


def test_the_count_sees_requests(apiserver, tmp_path):
    """The control: a module run with the same credential does reach the server."""
    playbook = tmp_path / "read.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Read pods",
                    "hosts": "clusters",
                    "gather_facts": False,
                    "tasks": [{"name": "Read", "meshops.istio.proxy_status": {"targets": [{"namespace": "default", "min_pods": 0}]}}],
                }
            ]
        )
    )
    before = len(apiserver.requests_of())
    rc, _output, stderr = run_playbook(playbook, env=credential_env(apiserver), inventory=inventory(tmp_path, {"one": {}}), timeout=300)
    assert rc == 0, stderr[-2000:]
    assert len(apiserver.requests_of()) > before
