# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters shared by every role: input validation, gateway identity, the Istio vocabulary.

The logic lives in module_utils (models/inputs.py, models/gateways.py, istio/vocab.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.models import gateways, inputs

_VOCAB = {
    "api_version": vocab.API_VERSION,
    "istio_group": vocab.ISTIO_GROUP,
    "owned_kinds": list(vocab.OWNED_KINDS),
    "owned_kind_refs": [{"api_version": vocab.API_VERSION, "kind": kind} for kind in vocab.OWNED_KINDS]
    + [{"api_version": api_version, "kind": kind} for api_version, kind in vocab.GATEWAY_API_OWNED],
    # the kinds only one traffic_api renders (ServiceEntries belong to both)
    "api_kind_refs": {
        "istio": [{"api_version": vocab.API_VERSION, "kind": kind} for kind in vocab.OWNED_KINDS if kind != "ServiceEntry"],
        "gateway_api": [{"api_version": api_version, "kind": kind} for api_version, kind in vocab.GATEWAY_API_OWNED],
    },
    "crd_names": list(vocab.CRD_NAMES),
    "field_manager": vocab.FIELD_MANAGER,
    "managed_by": vocab.MANAGED_BY,
    "label_managed_by": vocab.LABEL_MANAGED_BY,
    "label_part_of": vocab.LABEL_PART_OF,
    "label_instance": vocab.LABEL_INSTANCE,
    "label_route": vocab.LABEL_ROUTE,
    "label_istio": vocab.LABEL_ISTIO,
    "label_rev": vocab.LABEL_REV,
    "label_injection": vocab.LABEL_INJECTION,
    "label_tag": vocab.LABEL_TAG,
    "default_revision": vocab.DEFAULT_REVISION,
    "default_revision_tags": dict(vocab.DEFAULT_REVISION_TAGS),
    "cluster_domain": vocab.CLUSTER_DOMAIN,
}


def input_problems(values, role, context=None):
    """Every problem of one role's inputs, each prefixed with the role; empty when valid."""
    try:
        return inputs.problems(role, values, context or {})
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def gateway_identity(gateways_list, namespace, direction="ingress", name=""):
    """Name, namespace, selector, Service and FQDN of one gateway of the gateways role's list."""
    return gateways.identity(gateways_list if isinstance(gateways_list, list) else [], namespace or "istio-system", direction, name or "")


def istio_vocab(name, *args):
    """One fact of the collection's Istio vocabulary (see the filter's documentation)."""
    if name == "owned_selector":
        return vocab.owned_selector(*args)
    if name == "revision_label":
        return vocab.revision_label(*args)
    if name == "revision_of_version":
        return vocab.revision_of_version(*args)
    if name not in _VOCAB:
        raise AnsibleFilterError(
            "istio_vocab: unknown name %r (known: %s)" % (name, ", ".join([*sorted(_VOCAB), "owned_selector", "revision_label", "revision_of_version"]))
        )
    value = _VOCAB[name]
    return list(value) if isinstance(value, list) else value


class FilterModule:
    """meshops.istio filters shared by the roles."""

    def filters(self):
        return {"input_problems": input_problems, "gateway_identity": gateway_identity, "istio_vocab": istio_vocab}
