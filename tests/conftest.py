"""Shared pytest setup: make the repository importable as ansible_collections.meshops.istio.

The repository is linked as .ansible/collections/ansible_collections/meshops/istio (where
ansible.cfg and ansible-lint look) by the tools package, the one place that makes that link.
"""

import os
from pathlib import Path

from meshops_dev import collection

collection.importable()

# tools/dev test writes this file before a run with the kind clusters; the session removes it
# when it ends, after its fixtures tore the clusters down (or kept them on purpose), so that the
# next run knows whether the clusters it finds were left by a killed run (meshops_dev.jobs)
_SESSION_MARKER = os.environ.pop("MESHOPS_TEST_SESSION_MARKER", "")


def pytest_sessionfinish(session, exitstatus):
    if _SESSION_MARKER:
        Path(_SESSION_MARKER).unlink(missing_ok=True)
