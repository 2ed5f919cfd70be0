# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Kubernetes API client of the collection's modules: kubernetes.core's, with its auth options.

Every module that talks to a cluster takes kubernetes.core's authentication options (so the
``meshops.istio.cluster`` action group and the ``K8S_AUTH_*`` environment of AWX credentials
work the same for all of them) and gets its client here, once per module run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import traceback

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

try:
    import kubernetes  # noqa: F401 pylint: disable=unused-import
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):
        """Placeholder when the kubernetes client is missing (reported by the module)."""

    DynamicApiError = NotFoundError = ResourceNotFoundError = ApiException

# the client's exceptions are part of this module's interface: the modules catch them from here
__all__ = [
    "HAS_KUBERNETES",
    "KUBERNETES_IMPORT_ERROR",
    "ApiException",
    "DynamicApiError",
    "NotFoundError",
    "ResourceNotFoundError",
    "api_client",
    "api_message",
    "api_status",
    "auth_argument_spec",
    "auth_params",
    "module_client",
    "require",
]


def auth_argument_spec():
    """kubernetes.core's authentication options, for a module's argument spec."""
    return copy.deepcopy(AUTH_ARG_SPEC)


def auth_params(params):
    """The kubernetes.core auth options out of a module's params."""
    return dict((k, params.get(k)) for k in AUTH_ARG_SPEC if params.get(k) is not None)


def api_client(params):
    """A kubernetes.core K8SClient built from the module's auth options (or K8S_AUTH_*)."""
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client  # noqa: PLC0415 - needs kubernetes

    return get_api_client(**auth_params(params))


def require(module):
    """Fail the module with Ansible's usual message when the kubernetes client is missing."""
    if not HAS_KUBERNETES:
        from ansible.module_utils.basic import missing_required_lib  # noqa: PLC0415

        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)


def module_client(module, params=None):
    """The API client of a module run: the library's presence checked, a failure said plainly."""
    require(module)
    try:
        return api_client(module.params if params is None else params)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="cannot create the Kubernetes API client: %s" % exc)
    return None  # not reached: fail_json exits


def api_message(exc):
    """The API server's own message out of a client exception (its Status.message)."""
    body = getattr(exc, "body", None)
    if body is None:
        body = getattr(exc, "summary", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            status = json.loads(body)
        except ValueError:
            return body.strip() or str(exc)
        if isinstance(status, dict) and status.get("message"):
            return status["message"]
    if isinstance(body, dict) and body.get("message"):
        return body["message"]
    message = getattr(exc, "message", None)
    return str(message or exc)


def api_status(exc):
    """HTTP status of a client exception, or None."""
    for attr in ("status", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    return None
