"""Helpers shared by the test modules (imported as tests.helpers)."""

import json
import os
import pathlib
import subprocess
import sys
import time

from meshops_dev import istio

REPO = pathlib.Path(__file__).resolve().parent.parent


def istio_module_dir():
    """Directory of the pinned Istio release in the Go module cache (the tools' pin, downloaded once)."""
    return istio.module_dir()


def run_playbook(playbook, extra_vars=None, env=None, check=False, timeout=600, inventory="localhost,", tags=(), limit=None):
    """Run ansible-playbook with the JSON callback; return (returncode, parsed output, raw stderr)."""
    cmd = ["ansible-playbook", "-i", inventory, str(playbook)]
    if tags:
        cmd += ["--tags", ",".join(tags)]
    if limit:
        cmd += ["--limit", limit]
    if extra_vars is not None:
        cmd += ["--extra-vars", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    run_env = dict(os.environ)
    run_env.update(
        {
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            # the controller's own Python (the venv with kubernetes), never a discovered one
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }
    )
    run_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, cwd=str(REPO), timeout=timeout, check=False)
    keep = os.environ.get("MESHOPS_TEST_PLAYBOOK_OUTPUT")
    if keep:  # every run's command and JSON output (task durations included), for profiling the tests
        record = pathlib.Path(keep) / f"{time.time():.3f}-{pathlib.Path(str(playbook)).name}.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"cmd": cmd, "rc": proc.returncode, "out": proc.stdout}))
    try:
        output = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(f"ansible-playbook printed no JSON (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}") from exc
    return proc.returncode, output, proc.stderr


def task_results(output, host="localhost"):
    """[(task name, result)] in execution order for one host."""
    results = []
    for play in output.get("plays", []):
        for task in play.get("tasks", []):
            result = task.get("hosts", {}).get(host)
            if result is not None:
                results.append((task["task"]["name"], result))
    return results


def failed_task(output, host="localhost"):
    """(task name, result) of the first failed task, or None."""
    for name, result in task_results(output, host):
        if result.get("failed") and result.get("failed_when_result") is not False:
            return name, result
    return None


def run_module(main, capsys, args, check_mode=False):
    """Run a module's main() like Ansible does: args in, one JSON document out; (exit code, result)."""
    import pytest  # noqa: PLC0415 (helpers is also imported outside pytest runs)
    from ansible.module_utils.testing import patch_module_args  # noqa: PLC0415

    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, json.loads(capsys.readouterr().out)
