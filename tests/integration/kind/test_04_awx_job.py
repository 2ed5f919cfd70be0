"""site.yml as AWX runs it (issue 9): a private data directory as AWX lays it, streamed through
ansible-runner transmit | worker | process, the survey's answers as extra variables, and the
credential of an "OpenShift or Kubernetes API Bearer Token" - a token of the ServiceAccount that
docs/awx/rbac.yml binds to the collection's ClusterRole - injected as K8S_AUTH_* with no
kubeconfig anywhere. The first job installs for real (Istio is uninstalled first), so the
ClusterRole is proven sufficient; a token without one permission fails naming the verb and the
resource. The worker runs every job in the execution environment image built from
docs/awx/execution-environment.yml (process isolation with the project's engine, the container on
the kind network), so the image's ansible-core, kubernetes.core, Python libraries and helm do
the work."""

import json
import pathlib
import xml.etree.ElementTree as ET

import pytest

from meshops_dev import cache
from meshops_dev import ee as ee_image
from meshops_dev.awx import AwxJobs, ExecutionEnvironment, credential_of
from tests.helpers import REPO, run_playbook
from tests.integration.kind import probes
from tests.support.kind import INVENTORY

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]

HOST = "kind-meshops"


@pytest.fixture(name="credential", scope="module")
def fixture_credential(cluster):
    credential = credential_of(cluster.kubectl)
    yield credential
    cluster.kubectl("delete", "-f", str(REPO / "docs" / "awx" / "rbac.yml"), "--ignore-not-found", check=False)


@pytest.fixture(name="ee", scope="module")
def fixture_ee():
    # built by tools/dev test before pytest starts (cached by what it is built from)
    return ExecutionEnvironment(image=ee_image.build(), exposed=(str(cache.cache_dir() / "istio"),))


@pytest.fixture(name="jobs", scope="module")
def fixture_jobs(cluster, credential, ee, tmp_path_factory):
    return AwxJobs(tmp_path_factory.mktemp("awx"), cluster.env, credential, ee)


@pytest.fixture(name="first_job", scope="module")
def fixture_first_job(cluster, jobs):
    # from a cluster without Istio (the CRDs stay), so the job's token installs everything
    rc, _output, stderr = run_playbook(REPO / "playbooks" / "uninstall.yml", None, env=cluster.env, inventory=INVENTORY, timeout=1200)
    assert rc == 0, stderr[-2000:]
    return jobs.run("site.yml", {"verify_retries": 90}, report=True)


def counts(job):
    return {key: (job["stats"].get(key) or {}).get(HOST, 0) for key in ("ok", "changed", "failures", "dark", "skipped")}


def test_the_job_installs_and_verifies_with_the_token(first_job):
    assert first_job["status"] == "successful", (first_job["pipeline"], first_job["stdout"][-3000:])
    assert first_job["rc"] == 0
    assert counts(first_job)["failures"] == 0 and counts(first_job)["dark"] == 0, first_job["stats"]
    assert counts(first_job)["changed"] > 0
    # the route checks' JUnit report came back with the job's artifacts
    report = ET.parse(first_job["artifacts"] / "verify-junit.xml").getroot()
    suites = [report] if report.tag == "testsuite" else list(report)
    assert sum(int(s.get("tests")) for s in suites) >= 4 and sum(int(s.get("failures", 0)) for s in suites) == 0


def test_the_job_ran_in_the_execution_environment(first_job, ee):
    # what the worker started: ansible-playbook in a container of the EE image, on the kind network
    command = json.loads((first_job["worker_dir"] / "artifacts" / first_job["ident"] / "command").read_text())["command"]
    image = command.index(ee.image)
    assert command[:2] == ["docker", "run"] and "--network=kind" in command[:image], command
    assert command[image + 1].endswith("ansible-playbook"), command


def module_invocations(job):
    """The arguments of every module the job ran (after Ansible applied the K8S_AUTH_* fallbacks)."""
    return [
        (e["event_data"].get("task_action"), (e["event_data"].get("res") or {}).get("invocation", {}).get("module_args") or {})
        for e in job["events"]
        if e.get("event") == "runner_on_ok"
    ]


def test_the_modules_reached_the_cluster_through_the_credential(first_job, credential, jobs):
    cluster_modules = [(action, args) for action, args in module_invocations(first_job) if "api_key" in args]
    actions = {action for action, _args in cluster_modules}
    assert actions >= {"meshops.istio.object_set", "meshops.istio.route_verify", "meshops.istio.istiod_ready", "kubernetes.core.helm"}, actions
    # no module was given a kubeconfig or a context: kubernetes.core's client and helm took the
    # K8S_AUTH_* environment (the job's HOME has no ~/.kube/config, only helm's discovery cache;
    # KUBECONFIG is not set)
    assert all(args.get("kubeconfig") is None and args.get("context") is None for _action, args in cluster_modules)
    assert not (jobs.root / "home" / ".kube" / "config").exists() and "KUBECONFIG" not in jobs.env
    helm = [args for action, args in cluster_modules if action == "kubernetes.core.helm"]
    assert {a["host"] for a in helm} == {jobs.api_host} and {a["api_key"] for a in helm} == {"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}


def test_a_second_job_and_a_check_job_change_nothing(jobs, first_job):
    assert first_job["status"] == "successful"
    second = jobs.run("site.yml", {})
    assert second["status"] == "successful", second["stdout"][-3000:]
    assert counts(second)["changed"] == 0, second["stats"]
    check = jobs.run("site.yml", {}, job_type="check")
    assert check["status"] == "successful", check["stdout"][-3000:]
    assert counts(check)["changed"] == 0, check["stats"]


def test_the_token_is_in_no_output_event_or_artifact(jobs, credential, first_job):
    assert first_job["status"] == "successful"
    assert credential["token"] not in first_job["stdout"]
    assert credential["token"] not in json.dumps(first_job["events"])
    # ansible-runner itself records the environment it started ansible-playbook with, the
    # credential's variables included, in artifacts/<ident>/command and, for the container, in
    # artifacts/<ident>/env.list (owner-only with the worker's umask 077; AWX removes the job's
    # directory after the job); nothing else holds it
    found = jobs.files_containing(credential["token"])
    recorded = [path for path in found if path.endswith(("/command", "/env.list")) and "/artifacts/" in path]
    assert {pathlib.Path(path).name for path in recorded} == {"command", "env.list"}, found
    assert sorted(found) == sorted(recorded), found
    assert all(oct(pathlib.Path(path).stat().st_mode & 0o777) == "0o600" for path in recorded)


def test_a_bad_survey_answer_fails_the_job_and_applies_nothing(cluster, jobs, first_job):
    before = cluster.kubectl("-n", "httpbin", "get", "virtualservice", "httpbin", "-o", "jsonpath={.metadata.resourceVersion}")
    job = jobs.run("site.yml", {"verify_retries": -1, "meshops_upgrade_until": "promte"})
    assert job["status"] == "failed" and job["rc"] != 0
    stdout = job["stdout"]
    assert "problem(s) in the inputs of kind-meshops, nothing was changed on any cluster" in stdout, stdout[-3000:]
    assert "meshops_upgrade_until: 'promte' is not one of canary, promote, cleanup" in stdout
    assert "retries" in stdout.split("nothing was changed on any cluster", 1)[1]
    assert counts(job)["changed"] == 0
    assert cluster.kubectl("-n", "httpbin", "get", "virtualservice", "httpbin", "-o", "jsonpath={.metadata.resourceVersion}") == before


def test_a_token_without_a_permission_fails_naming_the_verb_and_the_resource(cluster, jobs, first_job):
    # the collection's ClusterRole without the permission to change VirtualServices
    role = json.loads(cluster.kubectl("get", "clusterrole", "meshops-istio", "-o", "json"))
    role["metadata"] = {"name": "meshops-istio-readonly-routes"}
    rules = [r for r in role["rules"] if "networking.istio.io" not in r.get("apiGroups", [])]
    rules.append({"apiGroups": ["networking.istio.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]})
    role["rules"] = rules
    cluster.kubectl("apply", "-f", "-", input_text=json.dumps(role))
    cluster.kubectl("-n", "meshops-automation", "create", "serviceaccount", "meshops-readonly-routes", check=False)
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "meshops-readonly-routes",
        "--clusterrole=meshops-istio-readonly-routes",
        "--serviceaccount=meshops-automation:meshops-readonly-routes",
    )
    try:
        token = cluster.kubectl("-n", "meshops-automation", "create", "token", "meshops-readonly-routes", "--duration=1h").strip()
        limited = AwxJobs(jobs.root / "limited", cluster.env, dict(jobs.credential, token=token), jobs.ee)
        route = dict(probes.SEED_ROUTE, http=[{"route": [{"host": "httpbin", "port": 8000}]}])  # a change: every path routed
        job = limited.run("site.yml", {"traffic_ingress_routes": [route], "verify_egress": False})
        assert job["status"] == "failed"
        assert 'cannot patch resource "virtualservices" in API group "networking.istio.io"' in job["stdout"], job["stdout"][-3000:]
    finally:
        cluster.kubectl("delete", "clusterrolebinding", "meshops-readonly-routes", "--ignore-not-found", check=False)
        cluster.kubectl("delete", "clusterrole", "meshops-istio-readonly-routes", "--ignore-not-found", check=False)
        cluster.kubectl("-n", "meshops-automation", "delete", "serviceaccount", "meshops-readonly-routes", "--ignore-not-found", check=False)
