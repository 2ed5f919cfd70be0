"""Shared pytest setup: make the repository importable as ansible_collections.meshops.istio.

The repository is linked as .ansible/collections/ansible_collections/meshops/istio (where
ansible.cfg and ansible-lint look) by the tools package, the one place that makes that link.
"""

from meshops_dev import collection

collection.importable()
