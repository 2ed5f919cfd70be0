"""tools/dev test on the kind clusters: one run at a time (a lock that the pytest it execs keeps),
and a run killed before its session ended makes the next one start from new clusters."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from meshops_dev import jobs, stack, stamps


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHOPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MESHOPS_STATE", raising=False)


def test_the_lock_outlives_exec_until_the_new_program_exits(tmp_path):
    # a child takes the lock and execs a program that sleeps: the lock stays held until it exits
    script = textwrap.dedent(
        """
        import os, sys
        from meshops_dev import stamps
        stamps.hold_across_exec("kind-clusters", "the first run")
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(2)"])
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    lock = stamps._lock_path("kind-clusters")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (lock.exists() and "pid" in lock.read_text(encoding="utf-8")):
        time.sleep(0.05)
    assert "pid" in lock.read_text(encoding="utf-8"), "the child took the lock and wrote who holds it"
    started = time.monotonic()
    fd = stamps.hold_across_exec("kind-clusters", "the first run to end")
    waited = time.monotonic() - started
    os.close(fd)
    assert child.wait(10) == 0
    assert waited >= 0.5, f"the second holder got the lock after {waited:.2f}s, while the exec'd program still ran"


def test_a_session_that_ended_leaves_nothing_to_reset(monkeypatch):
    calls = []
    monkeypatch.setattr(stack, "down", lambda keep_engine=False: calls.append(("down", keep_engine)))
    monkeypatch.setattr(jobs.engine, "up", lambda: calls.append("engine up"))
    jobs.start_afresh_after_an_unfinished_run()
    assert calls == []


def test_a_killed_session_makes_the_next_run_delete_its_clusters(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(stack, "down", lambda keep_engine=False: calls.append(("down", keep_engine)))
    monkeypatch.setattr(jobs.engine, "up", lambda: calls.append("engine up"))
    jobs.session_marker().write_text("pid 4242 since 2026-12-02 10:00:00\n", encoding="utf-8")
    jobs.start_afresh_after_an_unfinished_run()
    assert calls == ["engine up", ("down", True)], "the clusters go, the engine and its image cache stay"
    assert not jobs.session_marker().exists()
    out = capsys.readouterr()
    assert "pid 4242 since 2026-12-02 10:00:00" in out.out + out.err


def test_pytest_gets_the_background_build_setting_and_the_session_marker(monkeypatch):
    # molecule create runs tools/dev up again from inside pytest: without MESHOPS_BUILD_LATER it
    # would build every Istio version, waiting for the background build of the older one
    seen = {}
    monkeypatch.setattr(jobs, "ensure_venv", lambda: None)
    monkeypatch.setattr(stamps, "hold_across_exec", lambda name, what: 0)
    monkeypatch.setattr(stack, "up", lambda: seen.setdefault("up", os.environ.get(stack.BUILD_LATER_ENV)))
    monkeypatch.setattr(stack, "build_later_in_background", lambda: None)
    monkeypatch.setattr(jobs.cache, "official_images", lambda: False)
    monkeypatch.setattr(jobs.engine, "docker_env", lambda: {"DOCKER_HOST": "unix:///tmp/docker.sock"})
    monkeypatch.delenv(stack.BUILD_LATER_ENV, raising=False)
    monkeypatch.delenv(jobs.SESSION_MARKER_ENV, raising=False)

    def execve(path, argv, env):
        seen.update(argv=argv, env=env)

    monkeypatch.setattr(jobs.os, "execve", execve)
    jobs.test(False, ["-k", "kind"])
    assert seen["up"] == "background"
    assert seen["env"][stack.BUILD_LATER_ENV] == "background"
    assert seen["env"][jobs.SESSION_MARKER_ENV] == str(jobs.session_marker())
    assert jobs.session_marker().is_file()
    assert seen["argv"][-2:] == ["-k", "kind"]
