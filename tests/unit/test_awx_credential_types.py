"""The AWX credential type of docs/awx/credential_types.yml: a document AWX accepts (inputs and
injectors), whose injected variables are kubernetes.core authentication options read from the
environment (K8S_AUTH_<option>), the way the modules of the collection take a credential."""

import pathlib
import re

import yaml
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

REPO = pathlib.Path(__file__).resolve().parents[2]
TYPES = yaml.safe_load((REPO / "docs" / "awx" / "credential_types.yml").read_text())["awx_credential_types"]
# AWX's credential input field types and injector kinds (awx/main/models/credential.py)
FIELD_TYPES = ("string", "boolean")
INJECTOR_KINDS = ("file", "env", "extra_vars")


def test_every_type_is_a_document_awx_accepts():
    for credential_type in TYPES:
        assert credential_type["kind"] in ("cloud", "net")
        fields = credential_type["inputs"]["fields"]
        ids = {field["id"] for field in fields}
        assert all(field["type"] in FIELD_TYPES and field["label"] for field in fields)
        assert set(credential_type["inputs"]["required"]) <= ids
        assert set(credential_type["injectors"]) <= set(INJECTOR_KINDS)
        # file templates use the inputs only; env templates the inputs or the files' names
        for name, template in credential_type["injectors"].get("file", {}).items():
            assert re.fullmatch(r"template(\.\w+)?", name), name
            assert set(re.findall(r"{{\s*(\w+)\s*}}", template)) <= ids, template
        files = {name.split(".", 1)[1] for name in credential_type["injectors"].get("file", {}) if "." in name}
        for template in credential_type["injectors"].get("env", {}).values():
            used = re.findall(r"{{\s*([\w.]+)\s*}}", template)
            assert all(u in ids or (u.startswith("tower.filename.") and u.split(".", 2)[2] in files) for u in used), template


def test_the_injected_variables_are_kubernetes_core_authentication_options():
    options = {f"K8S_AUTH_{option.upper()}" for option in AUTH_ARG_SPEC}
    for credential_type in TYPES:
        injected = set(credential_type["injectors"].get("env", {}))
        assert injected and injected <= options, injected - options
