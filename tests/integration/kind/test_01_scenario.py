"""Molecule kind scenario: create, converge, idempotence, check mode, verify."""

import pytest

from tests.helpers import REPO, run_playbook
from tests.support.kind import INVENTORY

pytestmark = pytest.mark.kind


def test_create(molecule):
    assert molecule("create") == 0


def test_converge(molecule):
    assert molecule("converge") == 0


def test_idempotence(molecule):
    # molecule fails this step when the second converge reports any change
    assert molecule("idempotence") == 0


def test_check_mode_converge_reports_no_change(kind_env):
    rc, output, stderr = run_playbook(REPO / "molecule" / "shared" / "converge.yml", check=True, env=kind_env, inventory=INVENTORY, timeout=1800)
    stats = output["stats"]
    assert rc == 0, stderr[-3000:]
    assert stats, "no host ran"
    for host, counts in stats.items():
        assert counts["failures"] == 0 and counts["unreachable"] == 0, (host, counts)
        assert counts["changed"] == 0, (host, counts)


def test_verify(molecule):
    assert molecule("verify") == 0
