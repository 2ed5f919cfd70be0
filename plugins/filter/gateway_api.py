# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the Kubernetes Gateway API CRDs; the logic lives in module_utils/models/gateway_api.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.models import gateway_api


def gateway_api_crd_mismatches(objects, version, newer_only=False):
    """Gateway API CRDs that are not the standard channel of ``version`` (or, with ``newer_only``, that it would downgrade)."""
    return gateway_api.crd_mismatches(objects, version, newer_only=newer_only)


def gateway_api_status(objects):
    """What istiod's status conditions say of Gateways and HTTPRoutes: ``{pending, problems}``."""
    return gateway_api.status_problems(objects)


class FilterModule:
    """meshops.istio Gateway API filters."""

    def filters(self):
        return {"gateway_api_crd_mismatches": gateway_api_crd_mismatches, "gateway_api_status": gateway_api_status}
