# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of revision-based upgrades; the logic lives in module_utils/k8s/revisions.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.meshops.istio.plugins.module_utils.k8s import revisions
from ansible_collections.meshops.istio.plugins.module_utils.models import upgrade

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None


def revision_tag_objects(rendered):
    """The revision tag objects the istiod chart rendered (helm template output), owned by the collection."""
    if yaml is None:
        raise AnsibleFilterError("revision_tag_objects needs PyYAML")
    documents = [doc for doc in yaml.safe_load_all(rendered or "") if isinstance(doc, dict) and doc.get("kind")]
    return revisions.tag_objects(documents)


def namespaces_to_relabel(namespaces, names, selected):
    """Which namespaces of ``names`` must be labelled to select ``selected``."""
    return upgrade.namespaces_to_relabel(namespaces, names, selected)


class FilterModule:
    """meshops.istio revision filters."""

    def filters(self):
        return {"revision_tag_objects": revision_tag_objects, "namespaces_to_relabel": namespaces_to_relabel}
