"""Every option an argument spec gives a default has that default in the role's defaults/main.yml.

ansible-core validates the arguments of an entry point but does not set its defaults as
variables, so a task file (``tasks_from: uninstall``) meets an undefined variable unless
defaults/main.yml defines it.
"""

import json
import pathlib

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]


def spec_defaults():
    cases = []
    for spec_file in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        for entry, spec in specs.items():
            for name, option in (spec.get("options") or {}).items():
                if "default" in option:
                    cases.append(pytest.param(role.name, name, option["default"], id=f"{role.name}:{entry}:{name}"))
    return cases


@pytest.mark.parametrize(("role", "name", "default"), spec_defaults())
def test_spec_default_is_a_role_default(role, name, default):
    defaults = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    assert name in defaults, f"{name} has a default in roles/{role}/meta/argument_specs.yml but not in defaults/main.yml"
    value = defaults[name]
    if "{{" in json.dumps(value):
        return  # computed from other variables; the spec documents the resulting default
    assert value == default, f"roles/{role}: {name} defaults to {value!r} in defaults/main.yml but {default!r} in the argument spec"


def test_the_revision_tags_the_other_roles_fall_back_to_are_the_control_plane_defaults():
    from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab  # noqa: PLC0415

    defaults = yaml.safe_load((REPO / "roles" / "control_plane" / "defaults" / "main.yml").read_text())
    assert defaults["control_plane_revision_tags"] == vocab.DEFAULT_REVISION_TAGS
