"""The explicit command table of tools/dev."""

import pytest

from meshops_dev import cache, cli, errors, jobs

WORDS = [c.words for c in cli.COMMANDS]


def test_every_command_is_listed_once():
    assert len(WORDS) == len(set(WORDS))


def test_grouped_commands_have_a_described_group():
    groups = {w.split()[0] for w in WORDS if " " in w}
    assert groups == set(cli.GROUPS)
    assert all(len(w.split()) <= 2 for w in WORDS)


@pytest.mark.parametrize("command", cli.COMMANDS, ids=WORDS)
def test_each_row_parses_to_its_function(command):
    argv = command.words.split()
    if command.words == "cluster load":
        argv.append("some/image:tag")
    if command.words == "fleet playbook":
        argv.append("site.yml")
    args = cli.build_parser().parse_args(argv)
    assert args.func is command.run


def test_the_help_names_every_top_level_command(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for word in {w.split()[0] for w in WORDS}:
        assert f"    {word} " in out or f"    {word}\n" in out


def test_arguments_after_a_double_dash_are_passed_on():
    args = cli.build_parser().parse_args(["site", "--inventory", "inv.yml", "--", "-e", "x=1", "--check"])
    assert str(args.inventory) == "inv.yml"
    assert cli._rest(args.ansible_args) == ["-e", "x=1", "--check"]
    args = cli.build_parser().parse_args(["test", "--no-cluster", "--", "-x", "-q"])
    assert args.no_cluster is True
    assert cli._rest(args.pytest_args) == ["-x", "-q"]


def _table(run):
    return (cli.Command("engine up", "h", run),)


def test_main_turns_a_dev_error_into_exit_1(capsys):
    def fail(_args):
        raise errors.DevError("the engine does not answer")

    assert cli.main(["engine", "up"], _table(fail)) == 1
    assert "error: the engine does not answer" in capsys.readouterr().err


@pytest.mark.parametrize(("returned", "code"), [(None, 0), ({"DOCKER_HOST": "x"}, 0), (0, 0), (3, 3)])
def test_main_exit_code_is_the_returned_int_only(returned, code):
    assert cli.main(["engine", "up"], _table(lambda _args: returned)) == code


def test_an_unknown_command_is_refused():
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["build", "everything"])
    assert exc.value.code == 2


def test_fleet_playbook_runs_a_playbook_of_the_repository_against_the_fleet(monkeypatch):
    calls = []
    monkeypatch.setattr(jobs, "playbook", lambda path, *args, **kwargs: calls.append((path, args, kwargs)) or 0)
    args = cli.build_parser().parse_args(["fleet", "playbook", "playbooks/upgrade.yml", "--", "-e", "meshops_istio_minor=1.31"])
    assert args.func(args) == 0
    ((path, extra, kwargs),) = calls
    assert path == cache.REPO_ROOT / "playbooks" / "upgrade.yml"
    assert extra == ("-e", "meshops_istio_minor=1.31")
    assert kwargs["inventory"] == cache.fleet_inventory()


@pytest.mark.parametrize("name", ["nothere.yml", "../etc/passwd", "/etc/hostname"])
def test_fleet_playbook_refuses_what_is_not_a_playbook_of_the_repository(name):
    args = cli.build_parser().parse_args(["fleet", "playbook", name])
    with pytest.raises(errors.DevError, match="not a playbook of the repository"):
        args.func(args)
