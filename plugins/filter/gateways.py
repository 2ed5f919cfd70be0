# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of meshops.istio.gateways; the logic lives in module_utils/models/gateways.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.models import gateways as gateway_model


def gateway_releases(gateway_list, namespace, revision="", pull_policy="", pin=None, canary=None):
    """The Helm release (name, namespace, chart values, chart pin) of each gateway."""
    return gateway_model.releases(gateway_list, namespace, revision or "", pull_policy or "", pin or {}, canary or {})


class FilterModule:
    """meshops.istio gateway filters."""

    def filters(self):
        return {"gateway_releases": gateway_releases}
