"""The kind scenario: a real cluster built from source by tools/dev, driven through Molecule.

Stages run in file order and share the cluster; molecule's output streams to the terminal so
long steps show their progress. The cluster is destroyed after the last kind test, so that the
tests without a cluster that follow (lint, sanity, rendering, unit) do not share the two cores
with an idle cluster and its Istio.
The cluster helpers live in tests/support/kind.py.
"""

import os
import subprocess
import sys

import pytest

from meshops_dev import fleet
from tests.helpers import REPO
from tests.support.kind import INGRESS, INVENTORY, Cluster, kind_env, recap

# Names the test modules of this folder still import from here; tests/support/kind.py has them.
__all__ = ["INGRESS", "INVENTORY", "recap"]


@pytest.fixture(name="kind_env", scope="session")
def fixture_kind_env():
    """Environment with the venv, helm, the engine and the collection link."""
    return kind_env()


def keep_cluster():
    """MESHOPS_KEEP_CLUSTER=1 leaves the clusters up after the session."""
    return os.environ.get("MESHOPS_KEEP_CLUSTER", "") not in ("", "0", "false")


@pytest.fixture(name="streamed", scope="session")
def fixture_streamed(kind_env, pytestconfig):
    """Run a command in the repository with the kind environment, its output streaming to the
    terminal between ==> and <== lines; return the exit code."""
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")

    def run(label, cmd, timeout=3600, env=None):
        with capman.global_and_fixture_disabled():
            print(f"\n==> {label}", flush=True)
            proc = subprocess.run(cmd, cwd=str(REPO), env=kind_env if env is None else env, timeout=timeout, check=False)
            print(f"<== {label}: exit {proc.returncode}", flush=True)
        return proc.returncode

    return run


@pytest.fixture(name="molecule", scope="package")
def fixture_molecule(streamed):
    """Run `molecule <action> -s kind`, streaming its output; return the exit code. The cluster
    is destroyed when the last test of this package has run."""

    def run(action, *extra, timeout=3600):
        cmd = [os.path.join(os.path.dirname(sys.executable), "molecule"), action, "-s", "kind", *extra]
        return streamed(f"molecule {action} -s kind", cmd, timeout)

    yield run
    if not keep_cluster():
        run("destroy")


def tools_dev(streamed, *args, env=None):
    """Run ``tools/dev <args>``, streaming its output; return the exit code."""
    return streamed(f"tools/dev {' '.join(args)}", [sys.executable, str(REPO / "tools" / "dev"), *args], env=env)


@pytest.fixture(name="fleet_up", scope="module")
def fixture_fleet_up(streamed):
    """The three clusters of inventories/kind-fleet (`tools/dev fleet up --count 3`: the first is
    the scenario's cluster, the others are created here with the images of both Istio builds);
    the clusters after the first are deleted after the tests of the module, so that the tests
    that follow do not share the two cores with them."""
    assert tools_dev(streamed, "fleet", "up", "--count", str(fleet.INVENTORY_SIZE)) == 0, "tools/dev fleet up failed (its output is above)"
    yield fleet.INVENTORY_SIZE
    if not keep_cluster():
        tools_dev(streamed, "fleet", "down")


@pytest.fixture(name="first_member", scope="module")
def fixture_first_member(streamed, kind_env):
    """The fleet's first cluster (the scenario's) alone, with the images of both Istio builds
    (`tools/dev fleet up --count 1` without MESHOPS_BUILD_LATER, which would defer the older
    build): the tests of one cluster that upgrade between the builds."""
    env = {k: v for k, v in kind_env.items() if k != "MESHOPS_BUILD_LATER"}
    assert tools_dev(streamed, "fleet", "up", "--count", "1", env=env) == 0, "tools/dev fleet up failed (its output is above)"
    return fleet.FIRST


@pytest.fixture(name="cluster", scope="session")
def fixture_cluster(kind_env):
    return Cluster(kind_env)


@pytest.fixture(name="converged", scope="module")
def fixture_converged(cluster):
    """The reference scenario converged before the tests of a module (a rerun costs seconds)."""
    rc, output = cluster.site({"verify_egress": False})
    assert rc == 0, recap(output)
    return cluster
