"""Aligning a wrapper module's dependency versions with another's, so that the Go build cache
compiles the libraries both use once (gobuild.align, tools/dev build go-align)."""

import json
import os
import subprocess
import zipfile

import pytest

from meshops_dev import cache, errors, gobuild


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("v1.82.0", "v1.83.1"),
        ("v0.35.3", "v0.36.1"),
        ("v1.31.0-rc.0.0.20260824154656-b943409680a7", "v1.31.0"),
        ("v0.0.0-20260501213430-773586679f1c", "v0.0.0-20260506232448-6ae4ab07bb06"),
        ("v1.36.12-0.20260120151049-f2248ac996af", "v1.36.12"),
        ("v29.5.2+incompatible", "v29.7.2+incompatible"),
    ],
)
def test_versions_sort_as_go_sorts_them(lower, higher):
    assert gobuild.version_key(lower) < gobuild.version_key(higher)


def test_a_non_version_is_refused():
    with pytest.raises(errors.DevError, match="not a module version: latest"):
        gobuild.version_key("latest")


def test_differences_are_the_shared_modules_at_other_versions_except_the_kept_ones():
    mine = {"google.golang.org/grpc": "v1.83.1", "k8s.io/api": "v0.35.3", "istio.io/api": "v1.30.8", "only.mine/x": "v1.0.0", "same/y": "v1.0.0"}
    reference = {"google.golang.org/grpc": "v1.82.0", "k8s.io/api": "v0.36.1", "istio.io/api": "v1.31.0", "only.theirs/z": "v2.0.0", "same/y": "v1.0.0"}
    assert gobuild.differences(mine, reference, ("istio.io/", "k8s.io/")) == {"google.golang.org/grpc": ("v1.83.1", "v1.82.0")}
    assert set(gobuild.differences(mine, reference)) == {"google.golang.org/grpc", "k8s.io/api", "istio.io/api"}


def test_a_higher_version_is_required_and_a_lower_one_replaced():
    diff = {"a/up": ("v1.0.0", "v1.1.0"), "b/down": ("v1.83.1", "v1.82.0")}
    assert gobuild.edits(diff) == ["-require=a/up@v1.1.0", "-replace=b/down=b/down@v1.82.0"]
    # a raise that go mod tidy dropped again (nothing needs it) is pinned by a replace too
    assert gobuild.edits(diff, replace_all=True) == ["-replace=a/up=a/up@v1.1.0", "-replace=b/down=b/down@v1.82.0"]


@pytest.mark.parametrize("wrapper", sorted(gobuild.ALIGNED))
def test_every_aligned_wrapper_and_its_reference_exist_and_keep_their_own_main_module(wrapper):
    reference, keep = gobuild.ALIGNED[wrapper]
    assert (cache.GO_DIR / wrapper / "go.mod").is_file()
    assert (cache.GO_DIR / reference / "go.mod").is_file()
    assert reference not in gobuild.ALIGNED  # one level: a reference is never aligned itself
    assert all(prefix.endswith(("/", "-")) or "." in prefix for prefix in keep)


def _proxy_module(proxy, path, version, source):
    """One module version in a file:// GOPROXY (the .info, .mod and .zip files go download reads)."""
    folder = proxy / path / "@v"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version}.info").write_text(json.dumps({"Version": version}))
    (folder / f"{version}.mod").write_text(f"module {path}\n\ngo 1.22\n")
    with zipfile.ZipFile(folder / f"{version}.zip", "w") as archive:
        archive.writestr(f"{path}@{version}/go.mod", f"module {path}\n\ngo 1.22\n")
        archive.writestr(f"{path}@{version}/lib.go", source)
    with (folder / "list").open("a") as listing:
        listing.write(version + "\n")


def _compiled(wrapper, env, trimpath):
    """Packages `go build -v` compiles in ``wrapper`` (none when the build cache has them all)."""
    cmd = ["go", "build", "-v", *(["-trimpath"] if trimpath else []), "example.com/lib"]
    proc = subprocess.run(cmd, cwd=wrapper, env=env, capture_output=True, text=True, timeout=300, check=True)
    return [line for line in proc.stderr.splitlines() if line and not line.startswith("go: ")]  # not "go: downloading"


@pytest.mark.parametrize(("trimpath", "recompiled"), [(False, []), (True, ["example.com/lib"])])
def test_a_replaced_module_is_reused_from_the_build_cache_only_without_trimpath(tmp_path, trimpath, recompiled):
    # the reason gobuild builds without -trimpath: wrapper B selects lib v1.0.0 through a replace
    # (ALIGNED, its own requirement is v1.1.0), wrapper A selects it directly
    proxy = tmp_path / "proxy"
    _proxy_module(proxy, "example.com/lib", "v1.0.0", "package lib\n\nfunc Answer() int { return 42 }\n")
    _proxy_module(proxy, "example.com/lib", "v1.1.0", "package lib\n\nfunc Answer() int { return 43 }\n")
    env = dict(os.environ, **gobuild.go_env())
    env.update(GOPROXY=f"file://{proxy}", GOSUMDB="off", GOFLAGS="-mod=mod", GOCACHE=str(tmp_path / "cache"), GOMODCACHE=str(tmp_path / "mod"))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "go.mod").write_text("module a\n\ngo 1.22\n\nrequire example.com/lib v1.0.0\n")
    (b / "go.mod").write_text("module b\n\ngo 1.22\n\nrequire example.com/lib v1.1.0\n\nreplace example.com/lib => example.com/lib v1.0.0\n")
    assert _compiled(a, env, trimpath) == ["example.com/lib"]
    assert _compiled(b, env, trimpath) == recompiled
