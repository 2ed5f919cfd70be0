"""The AWX job templates of docs/awx/job_templates.yml: each survey is a document AWX accepts, and
every survey variable is an option of a role (its schema, which meta/argument_specs.yml holds) or
one of the playbooks' own variables, with the same type and choices."""

import pathlib

import pytest
import yaml

from ansible_collections.meshops.istio.plugins.module_utils.models import inputs

REPO = pathlib.Path(__file__).resolve().parents[2]
TEMPLATES = yaml.safe_load((REPO / "docs" / "awx" / "job_templates.yml").read_text())["awx_job_templates"]
QUESTIONS = [(t["name"], q) for t in TEMPLATES for q in t["survey_spec"]["spec"]]
IDS = [f"{name}:{q['variable']}" for name, q in QUESTIONS]

# AWX's survey question types and the keys every question has (awx/main/models/mixins.py,
# SurveyJobTemplateMixin; the API refuses a spec without them)
AWX_TYPES = ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
AWX_KEYS = ("question_name", "question_description", "variable", "type", "required", "default")
# the Ansible option type each survey type gives (AWX sends choices and text as strings)
SURVEY_TYPE_OF = {
    "str": ("text", "textarea", "multiplechoice"),
    "int": ("integer",),
    "float": ("float", "integer"),
    "bool": ("multiplechoice",),
    "raw": ("text",),
}
PLAYBOOKS = {"site.yml", "playbooks/upgrade.yml", "playbooks/rollback.yml", "playbooks/remove_scenario.yml", "playbooks/uninstall.yml"}


def option_of(variable):
    for role in inputs.ROLES:
        if variable in inputs.ROLE_OPTIONS[role]:
            return inputs.ROLE_OPTIONS[role][variable]
    return inputs.PLAYBOOK_OPTIONS.get(variable)


def choices_of(question):
    choices = question.get("choices")
    return choices.split("\n") if isinstance(choices, str) else list(choices or [])


def test_every_template_runs_a_playbook_of_the_collection():
    for template in TEMPLATES:
        assert (REPO / template["playbook"]).is_file(), template["name"]
        assert template["survey_enabled"] is True and template["survey_spec"]["spec"], template["name"]
    assert {t["playbook"] for t in TEMPLATES} == PLAYBOOKS


@pytest.mark.parametrize(("template", "question"), QUESTIONS, ids=IDS)
def test_each_question_is_one_awx_accepts(template, question):
    assert set(AWX_KEYS) <= set(question), (template, question)
    assert question["type"] in AWX_TYPES
    if question["type"] in ("multiplechoice", "multiselect"):
        assert choices_of(question), "a choice question needs choices"
        if question["default"] != "":
            assert question["default"] in choices_of(question)
    if question["type"] in ("text", "textarea", "password", "integer", "float"):
        assert "min" in question and "max" in question and question["min"] <= question["max"]


@pytest.mark.parametrize(("template", "question"), QUESTIONS, ids=IDS)
def test_each_variable_is_an_option_with_the_same_type_and_choices(template, question):
    option = option_of(question["variable"])
    assert option is not None, f"{template}: {question['variable']} is no option of a role nor a playbook variable"
    type_name = option.get("type", "str")
    assert question["type"] in SURVEY_TYPE_OF[type_name], (question["variable"], type_name, question["type"])
    if type_name == "bool":
        assert sorted(choices_of(question)) == ["false", "true"]
    elif option.get("choices"):
        assert set(choices_of(question)) <= {str(c) for c in option["choices"] if c != ""}, (question["variable"], option["choices"])
    else:
        assert question["type"] != "multiplechoice", f"{question['variable']} has no choices in its schema"


@pytest.mark.parametrize(("template", "question"), QUESTIONS, ids=IDS)
def test_optional_questions_send_nothing_unless_answered(template, question):
    """A survey answer is an extra variable and would override the inventory's value on every cluster."""
    if not question["required"]:
        assert question["default"] == "", (template, question["variable"])


def test_the_answers_of_each_survey_pass_the_input_checks():
    """Every choice and the bounds of every number, as the roles check them (strings, as AWX sends them)."""
    for template in TEMPLATES:
        for question in template["survey_spec"]["spec"]:
            answers = [str(question["min"]), str(question["max"])] if question["type"] == "integer" else choices_of(question)
            for answer in answers:
                variable = question["variable"]
                role = next((r for r in inputs.ROLES if variable in inputs.ROLE_OPTIONS[r]), "playbook")
                found = [p for p in inputs.problems(role, {variable: answer}) if p.startswith(f"{role}: {variable}")]
                assert found == [], (template["name"], variable, answer, found)
