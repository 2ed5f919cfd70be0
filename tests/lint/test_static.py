"""Linters, ansible-test sanity, ansible-doc and the collection build, run over the repository."""

import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import types

import ansible_collections.kubernetes.core as kubernetes_core
import pytest
import yaml
from ansible_test._internal import python_requirements

from tests.helpers import REPO

pytestmark = pytest.mark.lint

BIN = pathlib.Path(sys.executable).parent
# Not collection content: the air-gapped tooling and CI glue (Python checked by ruff).
NOT_CONTENT = ("tools/", ".ci/")


def run(cmd, cwd=REPO, timeout=1800, env=None):
    env = dict(env or os.environ, ANSIBLE_NOCOLOR="1", NO_COLOR="1")
    proc = subprocess.run([str(c) for c in cmd], cwd=str(cwd), capture_output=True, text=True, timeout=timeout, check=False, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def repo_files():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=str(REPO), capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def test_ruff_check():
    rc, out = run([BIN / "ruff", "check", "plugins", "tests", "tools"])
    assert rc == 0, out


def test_ruff_format():
    rc, out = run([BIN / "ruff", "format", "--check", "plugins", "tests", "tools"])
    assert rc == 0, out


def test_yamllint():
    rc, out = run([BIN / "yamllint", "--strict", "."])
    assert rc == 0, out


def test_ansible_lint_production_profile():
    rc, out = run([BIN / "ansible-lint", "--offline", "--profile", "production", "--nocolor"])
    assert rc == 0, out


def test_changelog_fragments():
    rc, out = run([BIN / "antsibull-changelog", "lint"])
    assert rc == 0, out


@pytest.fixture(name="collection_copy", scope="module")
def fixture_collection_copy(tmp_path_factory):
    """The collection's files in ansible_collections/meshops/istio, as ansible-test requires."""
    root = tmp_path_factory.mktemp("sanity") / "ansible_collections" / "meshops" / "istio"
    for name in repo_files():
        if name.startswith(NOT_CONTENT):
            continue
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    # the dependency, from the pinned ansible package, where ansible-test looks for it
    core = pathlib.Path(kubernetes_core.__file__ or next(iter(kubernetes_core.__path__))).resolve()
    core = core.parent if core.is_file() else core
    shutil.copytree(core, root.parent.parent / "kubernetes" / "core", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(name="ansible_test_home", scope="module")
def fixture_ansible_test_home():
    """HOME of ansible-test: its per-test venvs are cached there between runs.

    ansible-test bootstraps pip in those venvs with a get-pip.py it downloads from a host this
    machine cannot reach; tests/lint/get_pip_offline.py does the same from Python's bundled pip
    and the package index.
    """
    home = pathlib.Path(os.environ.get("MESHOPS_CACHE", pathlib.Path.home() / ".cache" / "meshops-istio")) / "ansible-test-home"
    pip_version = python_requirements.get_venv_packages(types.SimpleNamespace(version="3.11"))["pip"]
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "tests" / "lint" / "get_pip_offline.py", cache / f"get_pip_{pip_version.replace('.', '_')}.py")
    return home


def test_ansible_test_sanity(collection_copy, ansible_test_home):
    """Every sanity test of ansible-test, with kubernetes.core beside the collection as its dependency."""
    env = dict(os.environ, HOME=str(ansible_test_home))
    rc, out = run(
        [BIN / "ansible-test", "sanity", "--python", "3.11", "--requirements", "--color", "no"],
        cwd=collection_copy,
        timeout=3000,
        env=env,
    )
    assert rc == 0, out[-20000:]
    assert "sanity test(s) listed below" not in out


def modules():
    return sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def roles():
    return sorted(p.parent.parent.name for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))


def filters():
    return sorted(p.stem for p in (REPO / "plugins" / "filter").glob("*.yml"))


@pytest.mark.parametrize("module", modules())
def test_ansible_doc_renders_module(module):
    rc, out = run([BIN / "ansible-doc", "-t", "module", f"meshops.istio.{module}"])
    assert rc == 0, out
    assert "EXAMPLES:" in out
    assert "RETURN VALUES:" in out
    assert "[WARNING]" not in out, out


@pytest.mark.parametrize("role", roles())
def test_ansible_doc_renders_role(role):
    rc, out = run([BIN / "ansible-doc", "-t", "role", f"meshops.istio.{role}"])
    assert rc == 0, out
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    for entry in spec:
        assert f"ENTRY POINT: *{entry}*" in out, out


@pytest.mark.parametrize("name", filters())
def test_ansible_doc_renders_filter(name):
    rc, out = run([BIN / "ansible-doc", "-t", "filter", f"meshops.istio.{name}"])
    assert rc == 0, out
    assert "[WARNING]" not in out, out


def test_galaxy_build_ships_content_only(tmp_path):
    rc, out = run([BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, str(REPO)])
    assert rc == 0, out
    (artifact,) = tmp_path.glob("meshops-istio-*.tar.gz")
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names
    for prefix in ("tests/", "tools/", "molecule/", ".ci/", "inventories/", ".ansible/", ".git/"):
        assert not [n for n in names if n.startswith(prefix)], prefix
    for expected in ("roles/traffic/meta/argument_specs.yml", "plugins/modules/route_verify.py", "playbooks/site.yml", "meta/runtime.yml"):
        assert expected in names


def test_role_readmes_match_their_argument_specs():
    rc, out = run([sys.executable, REPO / "tools" / "docs" / "role_readmes.py", "--check"])
    assert rc == 0, out
