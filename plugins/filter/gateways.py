# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of meshops.istio.gateways; the logic lives in module_utils/gateway_model.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils import gateway_model


def gateway_errors(gateways, namespace="istio-system"):
    """Every problem of the gateway list; empty when valid."""
    return gateway_model.validate(gateways, namespace)


def gateway_values(gateway, revision=""):
    """Values of the official Istio gateway chart for one gateway."""
    return gateway_model.chart_values(gateway, revision or "")


class FilterModule:
    """meshops.istio gateway filters."""

    def filters(self):
        return {"gateway_errors": gateway_errors, "gateway_values": gateway_values}
