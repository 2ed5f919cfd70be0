"""docs/awx/execution-environment.yml is a definition ansible-builder accepts: its build context
holds the collection built from this repository, kubernetes.core, and the steps that install helm
and helm-diff. (The image itself is not built here: no base image registry is reachable.)"""

import shutil
import subprocess

import pytest
import yaml

from tests.helpers import REPO

DEFINITION = REPO / "docs" / "awx" / "execution-environment.yml"


@pytest.fixture(name="context", scope="module")
def fixture_context(tmp_path_factory):
    work = tmp_path_factory.mktemp("ee")
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(work), str(REPO)], check=True, capture_output=True)
    # the definition names the tarball next to the repository root, where `ansible-galaxy collection build` writes it
    (work / "docs" / "awx").mkdir(parents=True)
    shutil.copy(DEFINITION, work / "docs" / "awx")
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
    root, version = context
    requirements = yaml.safe_load((root / "_build" / "requirements.yml").read_text())["collections"]
    assert {"name": f"collections/meshops-istio-{version}.tar.gz", "type": "file"} in requirements
    assert any(c["name"] == "kubernetes.core" for c in requirements)
    assert (root / "_build" / "collections" / f"meshops-istio-{version}.tar.gz").is_file()


def test_the_image_gets_helm_and_helm_diff(context):
    dockerfile = (context[0] / "Dockerfile").read_text()
    final = dockerfile.split("FROM base AS final", 1)[1]
    assert "linux-amd64/helm" in final and "helm plugin install https://github.com/databus23/helm-diff" in final
    assert "ansible-core==2.19.14" in dockerfile and "ansible-runner==2.4.3" in dockerfile


def test_the_versions_are_the_collection_s():
    definition = yaml.safe_load(DEFINITION.read_text())
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert f"meshops-istio-{version}.tar.gz" in definition["dependencies"]["galaxy"]["collections"][0]["name"]
    assert definition["additional_build_files"][0]["src"].endswith(f"meshops-istio-{version}.tar.gz")
