"""Go builds from the wrapper modules under tools/go, cached by version.

``build()`` compiles main packages of a wrapper module (``tools/go/<name>``) into a versioned
output directory under ``$MESHOPS_CACHE/bin/`` and skips the build when every binary is there
and the build parameters are unchanged. The Go build cache (``go env GOCACHE``) is shared, so a
second build of another package with the same flags reuses compiled dependencies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import cache, errors, progress

_MAJOR_SUFFIX = re.compile(r"^v[0-9]+$")


def go_env(cgo: bool = False, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for every go command: local toolchain only, no VCS stamping surprises."""
    env = {
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"),
        "CGO_ENABLED": "1" if cgo else "0",
        "GOFLAGS": os.environ.get("GOFLAGS", "-buildvcs=false"),
    }
    if extra:
        env.update(extra)
    return env


def pinned(wrapper: str, module: str) -> str:
    """The version of ``module`` that the wrapper module ``tools/go/<wrapper>`` requires: the
    versions the tools name (cache keys, image tags) are read from there, never written twice."""
    text = (cache.GO_DIR / wrapper / "go.mod").read_text(encoding="utf-8")
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", text, re.M)
    if not match:
        raise errors.DevError(f"tools/go/{wrapper}/go.mod does not require {module}")
    return match.group(1)


def module_dir(name: str) -> Path:
    """Path of a wrapper module, e.g. ``module_dir("k8s")`` -> tools/go/k8s."""
    return cache.GO_DIR / name


def binary_name(package: str) -> str:
    """The file name ``go build -o DIR/`` gives a main package (major-version suffix skipped)."""
    parts = package.rstrip("/").split("/")
    if len(parts) > 1 and _MAJOR_SUFFIX.match(parts[-1]):
        return parts[-2]
    return parts[-1]


def invocations(todo: dict[str, str]) -> list[dict[str, str]]:
    """``{binary: package}`` split into ``go build`` invocations: one for all, unless two packages
    would write the same default file name (then those go one per invocation)."""
    defaults = [binary_name(pkg) for pkg in todo.values()]
    clashing = {name for name, pkg in todo.items() if defaults.count(binary_name(pkg)) > 1 or (name != binary_name(pkg) and name in defaults)}
    together = {name: pkg for name, pkg in todo.items() if name not in clashing}
    return ([together] if together else []) + [{name: pkg} for name, pkg in todo.items() if name in clashing]


def _fingerprint(module: Path, package: str, tags: Sequence[str], ldflags: str, cgo: bool) -> str:
    h = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        p = module / name
        if p.is_file():
            h.update(p.read_bytes())
    h.update(json.dumps([package, sorted(tags), ldflags, cgo]).encode())
    return h.hexdigest()[:16]


def _stamp(out: Path, name: str) -> Path:
    return out / f".{name}.build.json"


def _is_current(out: Path, name: str, fp: str) -> bool:
    if not (out / name).is_file():
        return False
    try:
        return json.loads(_stamp(out, name).read_text()).get("fingerprint") == fp
    except (OSError, ValueError):
        return False


def build(
    module_dir: str | os.PathLike,
    packages: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    tags: Sequence[str] = (),
    ldflags: str = "-s -w",
    cgo: bool = False,
    desc: str,
    env: Mapping[str, str] | None = None,
    heartbeat: float = 30,
) -> dict[str, Path]:
    """Build ``packages`` (main packages) of ``module_dir`` into ``out_dir``.

    ``module_dir`` is a path or the name of a wrapper module under tools/go. ``out_dir`` is
    relative to ``$MESHOPS_CACHE/bin`` unless absolute; give it a version, e.g.
    ``"k8s/v1.35.4"``. A package may be written ``name=import/path`` to choose the binary name.
    Returns ``{binary name: path}``. Each binary has a stamp (go.mod/go.sum, package, tags,
    ldflags, cgo); only binaries without a current stamp are built, and when none is missing the
    step is recorded as cached.
    """
    module = Path(module_dir)
    if not module.is_absolute():
        module = cache.GO_DIR / module
    if not (module / "go.mod").is_file():
        raise errors.DevError(f"{desc}: no go.mod in {module}")
    out = Path(out_dir)
    if not out.is_absolute():
        out = cache.bin_dir() / out
    targets: dict[str, str] = {}
    for spec in packages:
        if "=" in spec:
            name, pkg = spec.split("=", 1)
        else:
            name, pkg = binary_name(spec), spec
        targets[name] = pkg
    result = {name: out / name for name in targets}
    fps = {name: _fingerprint(module, pkg, tags, ldflags, cgo) for name, pkg in targets.items()}

    with progress.step(desc) as st:
        todo = {name: pkg for name, pkg in targets.items() if not _is_current(out, name, fps[name])}
        if not todo:
            st.cached = True
            return result
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".tmp-build-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            base = ["go", "build", "-trimpath"]
            if tags:
                base += ["-tags", ",".join(tags)]
            if ldflags:
                base += ["-ldflags", ldflags]
            benv = go_env(cgo, env)
            # One invocation for every package (one module graph load, shared packages compiled
            # once, both cores busy until the last link); binaries are renamed afterwards. Only
            # packages whose default names collide are built one by one.
            for group in invocations(todo):
                names = ", ".join(group)
                if len(group) == 1:
                    ((name, pkg),) = group.items()
                    cmd = [*base, "-o", str(tmp / name), pkg]
                else:
                    cmd = [*base, "-o", str(tmp) + "/", *group.values()]
                progress.run(cmd, desc=f"building {names}", env=benv, cwd=module, heartbeat=heartbeat)
                for name, pkg in group.items():
                    if len(group) > 1 and binary_name(pkg) != name:
                        (tmp / binary_name(pkg)).replace(tmp / name)
            for name, pkg in todo.items():
                built = tmp / name
                if not built.is_file():
                    raise errors.DevError(f"{desc}: go build produced no {name} in {tmp}")
                built.replace(out / name)
                _stamp(out, name).write_text(json.dumps({"fingerprint": fps[name], "package": pkg}) + "\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return result


def download(module_dir: str | os.PathLike, *, desc: str) -> None:
    """``go mod download`` for a wrapper module (warms the module cache)."""
    module = Path(module_dir)
    if not module.is_absolute():
        module = cache.GO_DIR / module
    progress.run(["go", "mod", "download"], desc=desc, env=go_env(), cwd=module)


def mod_dir(module_dir: str | os.PathLike, module_path: str) -> Path:
    """Directory of a dependency in the module cache, as selected by the wrapper module."""
    module = Path(module_dir)
    if not module.is_absolute():
        module = cache.GO_DIR / module
    out = progress.output(
        ["go", "list", "-m", "-f", "{{.Dir}}", module_path],
        desc=f"locating {module_path}",
        env=go_env(),
        cwd=module,
    )
    path = Path(out.splitlines()[-1].strip()) if out else None
    if not path or not path.is_dir():
        progress.run(["go", "mod", "download", module_path], desc=f"downloading {module_path}", env=go_env(), cwd=module)
        out = progress.output(
            ["go", "list", "-m", "-f", "{{.Dir}}", module_path],
            desc=f"locating {module_path}",
            env=go_env(),
            cwd=module,
        )
        path = Path(out.splitlines()[-1].strip())
    return path
