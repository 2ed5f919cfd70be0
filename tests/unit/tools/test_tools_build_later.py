"""What ``tools/dev test`` builds before the tests and what it leaves to the background build:
the Istio versions ``up`` builds, and the cache lock a second builder waits on."""

import threading
import time

import pytest

from meshops_dev import istio, stack, stamps


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHOPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(stack.BUILD_LATER_ENV, raising=False)


def test_without_the_background_build_up_builds_every_version():
    assert stack.deferred_minors(1) is None
    assert stack.deferred_minors(3) is None


def test_with_the_background_build_one_cluster_gets_the_inventory_version_only(monkeypatch):
    monkeypatch.setenv(stack.BUILD_LATER_ENV, "background")
    assert stack.deferred_minors(1) == [istio.DEFAULT_MINOR]
    # a fleet upgrades from one version to the other: it needs them all, so it waits for them
    assert stack.deferred_minors(3) is None
    assert [v.minor for v in istio.selected(stack.deferred_minors(1))] == [istio.DEFAULT_MINOR]


def test_a_second_builder_waits_until_the_first_releases_the_lock(capsys):
    held = threading.Event()
    events = []

    def first():
        with stamps.exclusive("istio-1.30", "the Istio 1.30 images"):
            held.set()
            time.sleep(1.5)
            events.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(10)
    started = time.monotonic()
    with stamps.exclusive("istio-1.30", "the Istio 1.30 images"):
        events.append("second in")
    waited = time.monotonic() - started
    thread.join(10)
    assert events == ["first done", "second in"]
    assert waited >= 1
    out = capsys.readouterr()
    assert "waiting for another process that builds the Istio 1.30 images" in out.out + out.err


def test_locks_of_different_builds_do_not_wait_on_each_other():
    with stamps.exclusive("istio-1.30", "the Istio 1.30 images"):
        started = time.monotonic()
        with stamps.exclusive("istio-1.31", "the Istio 1.31 images"):
            pass
        assert time.monotonic() - started < 1
