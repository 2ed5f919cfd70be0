"""Every module call in the collection's roles and playbooks passes only parameters the module
documents (with their aliases), at every level of suboptions written out literally.

ansible-lint's args rule skips a task whose values are templated inside a loop: a
``label_selector`` given to kubernetes.core.k8s_info (the parameter is ``label_selectors``)
reached a kind cluster before anything noticed. The modules' own documentation, from
ansible-doc, is the reference here.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.playbook.block import Block
from ansible.playbook.handler import Handler

from tests.helpers import REPO

pytestmark = pytest.mark.lint

# Keywords of a task, a handler and a block, as ansible-core defines them: the one key left is
# the module (local_action is the old spelling of an action delegated to localhost).
TASK_KEYWORDS = set(Handler.fattributes) | set(Block.fattributes) | {"local_action"}
# Modules whose parameters are free-form (any key, or a file name).
FREE_FORM = {"ansible.builtin.set_fact", "ansible.builtin.import_playbook", "ansible.builtin.meta"}
SOURCES = ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml", "site.yml", "molecule/*/*.yml")


def tasks_in(node):
    """Every task below a play list, a task list or a block, nested blocks included."""
    for item in node if isinstance(node, list) else []:
        if not isinstance(item, dict):
            continue
        if "hosts" in item or "import_playbook" in item or "ansible.builtin.import_playbook" in item:
            for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                yield from tasks_in(item.get(section))
            continue
        for section in ("block", "rescue", "always"):
            yield from tasks_in(item.get(section))
        if not any(section in item for section in ("block", "rescue", "always")):
            yield item


def module_calls():
    calls = []
    for pattern in SOURCES:
        for path in sorted(REPO.glob(pattern)):
            for task in tasks_in(yaml.safe_load(path.read_text(encoding="utf-8"))):
                names = [key for key in task if key not in TASK_KEYWORDS]
                assert len(names) == 1, f"{path.relative_to(REPO)}: task {task.get('name')!r} has no single module among {sorted(task)}"
                args = task[names[0]]
                if names[0] not in FREE_FORM and (isinstance(args, dict) or "args" in task):
                    merged = dict(task.get("args") or {})
                    merged.update(args if isinstance(args, dict) else {})
                    calls.append((f"{path.relative_to(REPO)}: {task.get('name', names[0])}", names[0], merged))
    return calls


CALLS = module_calls()


@pytest.fixture(name="docs", scope="module")
def fixture_docs():
    modules = sorted({module for _where, module, _args in CALLS})
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", "module", *modules],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert set(docs) == set(modules), f"ansible-doc did not document {sorted(set(modules) - set(docs))}"
    return {name: (entry["doc"].get("options") or {}) for name, entry in docs.items()}


def unknown_parameters(args, options, path=""):
    """The keys of ``args`` that ``options`` does not document, with their path; nested dicts
    (and lists of dicts) written out literally are checked against their suboptions."""
    names = {}
    for name, spec in options.items():
        for alias in [name, *(spec.get("aliases") or [])]:
            names[alias] = spec
    problems = []
    for key, value in args.items():
        spec = names.get(key)
        if spec is None:
            problems.append(f"{path}{key}")
            continue
        suboptions = spec.get("suboptions")
        if not suboptions:
            continue
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, dict):
                where = f"{path}{key}[{index}]." if isinstance(value, list) else f"{path}{key}."
                problems += unknown_parameters(item, suboptions, where)
    return problems


def test_the_roles_call_modules():
    # the collection's calls are found (a parser that found nothing would pass every check)
    modules = {module for _where, module, _args in CALLS}
    assert {"kubernetes.core.k8s_info", "kubernetes.core.helm", "meshops.istio.object_set"} <= modules, sorted(modules)


@pytest.mark.parametrize(("where", "module", "args"), CALLS, ids=[f"{where} ({module})" for where, module, _args in CALLS])
def test_every_parameter_is_one_the_module_documents(docs, where, module, args):
    unknown = unknown_parameters(args, docs[module])
    assert not unknown, f"{where}: {module} documents no parameter {', '.join(unknown)} (ansible-doc -t module {module})"


def test_an_unknown_parameter_is_found():
    # the check itself, on the mistake that reached a cluster
    options = {
        "label_selectors": {"type": "list"},
        "wait": {"type": "bool", "aliases": ["block"]},
        "delete_options": {"type": "dict", "suboptions": {"gracePeriodSeconds": {}}},
    }
    assert unknown_parameters({"label_selectors": [], "block": True}, options) == []
    assert unknown_parameters({"label_selector": "app=x"}, options) == ["label_selector"]
    assert unknown_parameters({"delete_options": {"grace_period": 1}}, options) == ["delete_options.grace_period"]
