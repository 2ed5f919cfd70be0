"""The execution environment build's own parts (tools/meshops_dev/ee.py): the collection artifact
repacked from the venv's kubernetes.core installs with ansible-galaxy, and the package index
names projects as pip looks them up. (The image itself: tools/dev build ee, used by the AWX kind
tests.)"""

import json
import subprocess
import tarfile

import pytest

from meshops_dev import ee, errors


@pytest.mark.parametrize(
    ("filename", "project"),
    [
        ("ansible_core-2.19.14-py3-none-any.whl", "ansible-core"),
        ("google_re2-1.1.20251105-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "google-re2"),
        ("PyYAML-6.0.4-cp311-cp311-manylinux_2_17_x86_64.whl", "pyyaml"),
        ("Parsley-1.3.tar.gz", "parsley"),
        ("zope.interface-7.2.tar.gz", "zope-interface"),
    ],
)
def test_the_index_names_projects_as_pep_503_normalizes_them(filename, project):
    assert ee._project_name(filename) == project


def test_the_repacked_kubernetes_core_installs_with_ansible_galaxy(tmp_path):
    version = next(name for name, fqcn in ee.context_files().items() if fqcn == "kubernetes.core").rsplit("-", 1)[1][: -len(".tar.gz")]
    tarball = tmp_path / f"kubernetes-core-{version}.tar.gz"
    ee.repack_installed("kubernetes.core", version, tarball)
    with tarfile.open(tarball) as tar:
        listed = json.loads(tar.extractfile("FILES.json").read())["files"]
        members = set(tar.getnames())
    assert all(entry["name"] in members for entry in listed if entry["name"] != ".")
    cmd = ["ansible-galaxy", "collection", "install", "--force", "--no-deps", "-p", str(tmp_path / "installed"), str(tarball)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = tmp_path / "installed" / "ansible_collections" / "kubernetes" / "core"
    assert json.loads((installed / "MANIFEST.json").read_text())["collection_info"]["version"] == version
    assert (installed / "plugins" / "modules" / "helm.py").is_file()


def test_a_version_other_than_the_venv_s_is_refused(tmp_path):
    with pytest.raises(errors.DevError, match=r"wants kubernetes\.core 0\.0\.1; the venv.s ansible package has"):
        ee.repack_installed("kubernetes.core", "0.0.1", tmp_path / "x.tar.gz")
