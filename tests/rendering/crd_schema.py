"""Validate Istio and Gateway API objects against the CRD schemas of the pinned releases.

The schemas come from the releases themselves (manifests/charts/base/files/crd-all.gen.yaml of the
istio.io/istio module, config/crd/standard of the sigs.k8s.io/gateway-api module Istio requires,
both fetched through the Go module proxy), never from a copy. Unknown fields
are rejected as the API server does with strict field validation; CEL rules
(x-kubernetes-validations) are left to the real API server of the kind scenario.
"""

import copy
import functools

import jsonschema
import yaml

from meshops_dev import gatewayapi
from tests.helpers import istio_module_dir


def _strict(schema):
    """Reject unknown fields where the structural schema would prune them."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties"):
            for child in (node.get(key) or {}).values():
                walk(child)
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), dict):
                walk(node[key])
        for key in ("oneOf", "anyOf", "allOf"):
            for child in node.get(key) or []:
                walk(child)

    walk(schema)
    return schema


def _crd_documents():
    """Istio's CRDs, then the Gateway API's standard channel of the module Istio is built with."""
    yield from yaml.safe_load_all((istio_module_dir() / "manifests" / "charts" / "base" / "files" / "crd-all.gen.yaml").read_text())
    yield from yaml.safe_load_all(gatewayapi.manifest_text(gatewayapi.module_dir()))


@functools.lru_cache(maxsize=1)
def crd_validators():
    """{(group/version, kind): validator} for every served version of every Istio and Gateway API CRD."""
    validators = {}
    for doc in _crd_documents():
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        group = doc["spec"]["group"]
        kind = doc["spec"]["names"]["kind"]
        for version in doc["spec"]["versions"]:
            if not version.get("served"):
                continue
            schema = version["schema"]["openAPIV3Schema"]
            validators[("{}/{}".format(group, version["name"]), kind)] = jsonschema.Draft7Validator(_strict(schema))
    return validators


def schema_errors(obj):
    """Messages for every schema violation of one object (empty when it conforms)."""
    validator = crd_validators().get((obj.get("apiVersion"), obj.get("kind")))
    if validator is None:
        return ["no CRD of the pinned Istio and Gateway API releases serves {} {}".format(obj.get("apiVersion"), obj.get("kind"))]
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    return ["{}: {}".format("/".join(str(p) for p in err.absolute_path) or "(root)", err.message) for err in validator.iter_errors(body)]
