"""Cache keys change when their inputs change, and only then."""

import json

import pytest

from meshops_dev import gobuild, images, jobs, progress, stamps


def test_short_hash_is_stable_and_sensitive():
    assert images.short_hash("a", 1, b"x") == images.short_hash("a", 1, b"x")
    assert len(images.short_hash("a")) == 10
    assert images.short_hash("a", "b") != images.short_hash("ab")  # parts are separated
    assert images.short_hash("a") != images.short_hash("b")


def test_image_key_includes_the_recipe(monkeypatch):
    before = images.image_key("v1", "abc")
    monkeypatch.setattr(images, "RECIPE", images.RECIPE + "-next")
    assert images.image_key("v1", "abc") != before


def test_file_key_follows_the_contents(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(b"binary")
    two.write_bytes(b"dockerfile")
    key = images.file_key(one, two)
    assert images.file_key(one, two) == key
    two.write_bytes(b"dockerfile, changed")
    assert images.file_key(one, two) != key
    assert images.file_key(two, one) != images.file_key(one, two)


def test_rootfs_path_names_suite_and_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHOPS_CACHE", str(tmp_path))
    base = images.rootfs_path("workload", ("ca-certificates", "curl"), "users")
    assert base.parent == tmp_path / "rootfs"
    assert base.name.startswith(f"{images.DEBIAN_SUITE}-workload-")
    assert images.rootfs_path("workload", ("ca-certificates",), "users") != base
    assert images.rootfs_path("workload", ("ca-certificates", "curl"), "other users") != base


def _module(tmp_path, gosum="h1"):
    (tmp_path / "go.mod").write_text("module example.com/wrapper\n")
    (tmp_path / "go.sum").write_text(gosum)
    return tmp_path


@pytest.mark.parametrize(
    "change",
    [
        {"package": "example.com/other"},
        {"tags": ("seccomp",)},
        {"ldflags": "-s -w -X main.version=2"},
        {"cgo": True},
    ],
)
def test_go_fingerprint_changes_with_every_build_input(tmp_path, change):
    base = {"package": "example.com/cmd", "tags": (), "ldflags": "-s -w", "cgo": False}
    module = _module(tmp_path)
    fp = gobuild._fingerprint(module, **base)
    assert gobuild._fingerprint(module, **base) == fp
    assert gobuild._fingerprint(module, **{**base, **change}) != fp


def test_go_fingerprint_changes_with_the_module_graph(tmp_path):
    module = _module(tmp_path)
    fp = gobuild._fingerprint(module, "example.com/cmd", (), "-s -w", False)
    (module / "go.sum").write_text("h2")
    assert gobuild._fingerprint(module, "example.com/cmd", (), "-s -w", False) != fp


def test_go_fingerprint_changes_with_the_wrapper_modules_own_main_package(tmp_path):
    # tools/go/node/coredns builds its own main.go (the plugins it imports)
    module = _module(tmp_path)
    fp = gobuild._fingerprint(module, "meshops.local/tools/node/coredns", (), "-s -w", False)
    (module / "main.go").write_text("package main\n")
    with_main = gobuild._fingerprint(module, "meshops.local/tools/node/coredns", (), "-s -w", False)
    assert with_main != fp
    (module / "main.go").write_text('package main\n\nimport _ "example.com/plugin"\n')
    assert gobuild._fingerprint(module, "meshops.local/tools/node/coredns", (), "-s -w", False) != with_main


def test_go_fingerprint_ignores_the_order_of_tags(tmp_path):
    module = _module(tmp_path)
    assert gobuild._fingerprint(module, "p", ("a", "b"), "", False) == gobuild._fingerprint(module, "p", ("b", "a"), "", False)


@pytest.mark.parametrize(
    ("package", "name"),
    [
        ("k8s.io/kubernetes/cmd/kubectl", "kubectl"),
        ("github.com/databus23/helm-diff/v3", "helm-diff"),
        ("github.com/containerd/containerd/v2/cmd/ctr", "ctr"),
        ("sigs.k8s.io/kind", "kind"),
    ],
)
def test_binary_name_is_what_go_build_writes(package, name):
    assert gobuild.binary_name(package) == name


def test_venv_key_follows_requirements_and_the_tools_project(monkeypatch, tmp_path):
    req, project = tmp_path / "requirements.txt", tmp_path / "pyproject.toml"
    req.write_text("ansible==12.3.0\n")
    project.write_text("[project]\nname = 'meshops-dev'\n")
    monkeypatch.setattr(jobs, "REQUIREMENTS", req)
    monkeypatch.setattr(jobs, "TOOLS_PROJECT", project)
    key = jobs.venv_key()
    assert key.startswith("venv/3.")
    project.write_text("[project]\nname = 'meshops-dev'\nversion = '2'\n")
    assert jobs.venv_key() != key
    changed = jobs.venv_key()
    req.write_text("ansible==12.4.0\n")
    assert jobs.venv_key() not in (key, changed)


def fail(error):
    """A producer that raises ``error``."""

    def produce():
        raise error

    return produce


def test_cached_runs_the_producer_once_per_key(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHOPS_CACHE", str(tmp_path))
    calls = []
    assert stamps.cached("thing/v1", lambda: calls.append(1) or "built") == "built"
    assert stamps.cached("thing/v1", lambda: calls.append(1) or "built") is None
    assert stamps.cached("thing/v2", lambda: calls.append(1) or "built") == "built"
    assert len(calls) == 2
    assert json.loads((tmp_path / "stamps" / "thing__v1.json").read_text())["key"] == "thing/v1"
    # a failed producer leaves no stamp
    with pytest.raises(RuntimeError):
        stamps.cached("thing/v3", fail(RuntimeError("boom")))
    assert not stamps.is_stamped("thing/v3")


def test_timings_are_recorded_per_step(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHOPS_CACHE", str(tmp_path))
    with progress.step("build example v1") as st:
        st.cached = True
    entry = json.loads((tmp_path / "timings.jsonl").read_text().splitlines()[-1])
    assert entry["name"] == "build example v1"
    assert entry["cached"] is True
    assert entry["ok"] is True


def test_one_go_build_invocation_unless_default_names_clash():
    todo = {
        "kubectl": "k8s.io/kubernetes/cmd/kubectl",
        "diff": "github.com/databus23/helm-diff/v3",
        "etcd": "go.etcd.io/etcd/server/v3",
    }
    assert gobuild.invocations(todo) == [todo]
    clash = {"a": "example.com/one/cmd/tool", "b": "example.com/two/cmd/tool", "c": "example.com/cmd/c"}
    assert gobuild.invocations(clash) == [{"c": "example.com/cmd/c"}, {"a": "example.com/one/cmd/tool"}, {"b": "example.com/two/cmd/tool"}]
    # a renamed binary must not overwrite another package's default file name
    shadow = {"tool": "example.com/cmd/other", "x": "example.com/cmd/tool"}
    assert len(gobuild.invocations(shadow)) == 2


def test_background_steps_run_beside_the_main_thread(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MESHOPS_CACHE", str(tmp_path))
    with progress.step("main step"):
        work = progress.background("download", lambda: "done")
        assert work.result() == "done"
    failing = progress.background("debootstrap", fail(OSError("mirror unreachable")))
    with pytest.raises(OSError, match="mirror unreachable"):
        failing.result()
    failing.settle()  # a prefetch failure is reported, not raised
    err = capsys.readouterr().err
    assert "    ==> download (in the background) ..." in err
    assert "debootstrap failed in the background (done again where it is needed): mirror unreachable" in err
    names = [json.loads(line)["name"] for line in (tmp_path / "timings.jsonl").read_text().splitlines()]
    assert names == ["download (in the background)", "main step", "debootstrap (in the background)"]
