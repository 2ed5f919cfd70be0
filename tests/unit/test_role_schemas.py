"""One schema per concept: each role's meta/argument_specs.yml holds the schema of the role's
inputs in plugins/module_utils/models/inputs.py (keys, types, list elements, choices, required,
nested options), and the traffic filter's documented settings hold the data model's."""

import pathlib

import pytest
import yaml

from ansible_collections.meshops.istio.plugins.module_utils.models import inputs, traffic

REPO = pathlib.Path(__file__).resolve().parents[2]
COMPARED = ("type", "elements", "required")


def spec_options(role):
    """Every option of every entry point of a role: {name: [(entry point, option)]}."""
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    found = {}
    for entry, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            found.setdefault(name, []).append((entry, option))
    return found


def differences(documented, schema, path):
    """Where a documented option tree and a schema tree disagree."""
    problems = []
    for key in COMPARED:
        doc_value = documented.get(key, "str" if key == "type" else (False if key == "required" else None))
        schema_value = schema.get(key, "str" if key == "type" else (False if key == "required" else None))
        if doc_value != schema_value:
            problems.append(f"{path}: {key} is {doc_value!r} in the argument spec, {schema_value!r} in the schema")
    if sorted(map(str, documented.get("choices") or [])) != sorted(map(str, schema.get("choices") or [])):
        problems.append(f"{path}: choices {documented.get('choices')} in the argument spec, {schema.get('choices')} in the schema")
    if "options" in documented:
        doc_options, schema_options = documented["options"] or {}, schema.get("options") or {}
        if set(doc_options) != set(schema_options):
            problems.append(f"{path}: keys {sorted(doc_options)} in the argument spec, {sorted(schema_options)} in the schema")
        for key in sorted(set(doc_options) & set(schema_options)):
            problems.extend(differences(doc_options[key], schema_options[key], f"{path}.{key}"))
    return problems


@pytest.mark.parametrize("role", inputs.ROLES)
def test_every_schema_option_is_documented_and_nothing_else(role):
    assert set(spec_options(role)) == set(inputs.ROLE_OPTIONS[role])


@pytest.mark.parametrize("role", inputs.ROLES)
def test_the_argument_spec_holds_the_schema(role):
    problems = []
    for name, occurrences in spec_options(role).items():
        for entry, option in occurrences:
            problems.extend(differences(option, inputs.ROLE_OPTIONS[role][name], f"{role}:{entry}:{name}"))
    assert problems == []


def test_the_main_entry_points_document_the_nested_options():
    """The route lists and the gateway list are documented with their nested options."""
    assert "options" in spec_options("traffic")["traffic_ingress_routes"][0][1]
    assert "options" in spec_options("traffic")["traffic_egress_routes"][0][1]
    assert "options" in spec_options("gateways")["gateways_list"][0][1]


def test_the_filter_documents_the_settings_of_the_data_model():
    doc = yaml.safe_load((REPO / "plugins" / "filter" / "traffic_manifests.yml").read_text())["DOCUMENTATION"]
    settings = doc["options"]["settings"]
    assert (
        differences({"type": "dict", "options": settings["suboptions"]} | _renamed(settings), {"type": "dict", "options": traffic.SETTINGS_OPTIONS}, "settings")
        == []
    )


def _renamed(option):
    """Filter docs say suboptions where argument specs say options."""
    out = {}
    for key, value in option.items():
        if key == "suboptions":
            out["options"] = {k: _renamed(v) for k, v in value.items()}
        elif key not in ("description", "default"):
            out[key] = value
    return out


def test_a_difference_is_found():
    """The comparison can fail: a wrong type, a missing choice, an extra nested key."""
    schema = {"type": "list", "elements": "dict", "options": {"a": {"type": "int", "choices": [1, 2]}}}
    documented = {"type": "list", "elements": "dict", "options": {"a": {"type": "str", "choices": [1]}, "b": {}}}
    assert len(differences(documented, schema, "x")) == 3
