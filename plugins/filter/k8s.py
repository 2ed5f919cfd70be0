# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that make Kubernetes API errors readable."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

_PREFIX = re.compile(r"^Failed to \w+ object: ")


def k8s_error_message(msg):
    """The API server's own message from a kubernetes.core error such as 'Failed to apply object: {...}'."""
    text = _PREFIX.sub("", str(msg or "")).strip()
    if text.startswith("{"):
        try:
            status = json.loads(text)
        except ValueError:
            return text
        if isinstance(status, dict) and status.get("message"):
            return status["message"]
    return text


class FilterModule:
    """meshops.istio Kubernetes filters."""

    def filters(self):
        return {"k8s_error_message": k8s_error_message}
