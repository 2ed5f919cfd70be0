"""docs/awx/execution-environment.yml is a definition ansible-builder accepts: its build context
holds the collection built from this repository and kubernetes.core, every source is a build
argument, and the steps install helm and helm-diff. (tools/dev build ee builds the image from it;
the AWX kind tests run their jobs in that image.)"""

import importlib.metadata
import json
import pathlib
import shutil
import subprocess

import pytest
import yaml

from meshops_dev import ee, hosttools
from tests.helpers import REPO

DEFINITION = REPO / "docs" / "awx" / "execution-environment.yml"


@pytest.fixture(name="context", scope="module")
def fixture_context(tmp_path_factory):
    work = tmp_path_factory.mktemp("ee")
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(work), str(REPO)], check=True, capture_output=True)
    # the definition names the tarballs under build/collections, where the README's commands write them
    (work / "docs" / "awx").mkdir(parents=True)
    shutil.copy(DEFINITION, work / "docs" / "awx")
    (work / "build" / "collections").mkdir(parents=True)
    shutil.move(str(next(work.glob("meshops-istio-*.tar.gz"))), work / "build" / "collections")
    for name, fqcn in ee.context_files().items():
        if fqcn != "meshops.istio":
            (work / "build" / "collections" / name).write_bytes(b"")  # create only copies it
    proc = subprocess.run(
        ["ansible-builder", "create", "-f", str(work / "docs" / "awx" / DEFINITION.name), "-c", str(work / "context")],
        capture_output=True,
        text=True,
        check=False,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work / "context", version


def test_the_context_carries_the_collection_and_kubernetes_core(context):
    root, _version = context
    requirements = yaml.safe_load((root / "_build" / "requirements.yml").read_text())["collections"]
    assert requirements == [{"name": f"collections/{name}", "type": "file"} for name in ee.context_files()]
    assert [name for name, fqcn in ee.context_files().items() if fqcn == "kubernetes.core"]
    for name in ee.context_files():
        assert (root / "_build" / "collections" / name).is_file()


def test_the_image_gets_helm_and_helm_diff(context):
    dockerfile = (context[0] / "Dockerfile").read_text()
    final = dockerfile.split("FROM base AS final", 1)[1]
    assert "ARG HELM_URL=https://get.helm.sh/helm-v3.21.4-linux-amd64.tar.gz" in final
    assert 'curl -fsSL "$HELM_DIFF_URL" | tar -xz -C "$HELM_PLUGINS"' in final and "helm diff version" in final
    assert "ansible-core==2.19.14" in dockerfile and "ansible-runner==2.4.3" in dockerfile


def test_every_source_is_a_build_argument_with_the_public_default(context):
    dockerfile = (context[0] / "Dockerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="docker.io/library/debian:bookworm-slim"' in dockerfile
    base, rest = dockerfile.split("FROM base AS galaxy", 1)
    # the index is set once in the base stage, which every later stage starts from, and removed at the end
    assert "ARG PIP_INDEX_URL=https://pypi.org/simple" in base and "> /etc/pip.conf" in base
    assert base.index("/etc/pip.conf") < base.index("pip install --no-cache-dir $ANSIBLE_INSTALL_REFS")
    final = rest.split("FROM base AS final", 1)[1]
    assert final.index("pip install --no-cache-dir 'dumb-init") < final.index("RUN rm /etc/pip.conf")
    # tools/dev build ee passes exactly these (the definition's arguments, nothing else changes)
    for name in ("EE_BASE_IMAGE", "PIP_INDEX_URL", "HELM_URL", "HELM_DIFF_URL"):
        assert f"ARG {name}" in dockerfile, name


def test_the_helm_versions_are_the_host_tools_ones():
    dockerfile_steps = " ".join(yaml.safe_load(DEFINITION.read_text())["additional_build_steps"]["append_final"])
    assert f"helm-{hosttools.HELM_VERSION}-linux-amd64.tar.gz" in dockerfile_steps
    assert f"/download/{hosttools.HELM_DIFF_VERSION}/helm-diff-linux-amd64.tgz" in dockerfile_steps


def test_the_versions_are_the_collection_s():
    definition = yaml.safe_load(DEFINITION.read_text())
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert f"meshops-istio-{version}.tar.gz" in definition["dependencies"]["galaxy"]["collections"][0]["name"]
    assert definition["additional_build_files"][0]["src"].endswith(f"meshops-istio-{version}.tar.gz")
    # kubernetes.core at the version of the ansible package the tests pin (what the EE built here holds)
    core = importlib.metadata.distribution("ansible").locate_file("ansible_collections/kubernetes/core/MANIFEST.json")
    core_version = json.loads(pathlib.Path(core).read_text())["collection_info"]["version"]
    assert ee.context_files() == {f"meshops-istio-{version}.tar.gz": "meshops.istio", f"kubernetes-core-{core_version}.tar.gz": "kubernetes.core"}
    assert {c["name"] for c in definition["dependencies"]["galaxy"]["collections"]} == {f"collections/{name}" for name in ee.context_files()}
