"""Go builds from the wrapper modules under tools/go, cached by version.

``build()`` compiles main packages of a wrapper module (``tools/go/<name>``) into a versioned
output directory under ``$MESHOPS_CACHE/bin/`` and skips the build when every binary is there
and the build parameters are unchanged. The Go build cache (``go env GOCACHE``) is shared, so a
second build of another package with the same flags reuses compiled dependencies, but only
those whose module versions (and their dependencies' versions) are the same in both modules
(and, as nothing is built with ``-trimpath``, also when one of them selects it by a ``replace``):
``ALIGNED`` names the wrapper modules that select their reference's version of every module
they share with it (``align()``, ``tools/dev build go-align``; docs/development.md, "Go build cache").
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
_SEMVER = re.compile(r"^v([0-9]+)\.([0-9]+)\.([0-9]+)(-[^+]*)?")

# wrapper -> (reference wrapper, module path prefixes that keep the wrapper's own version).
# istio-1.30: Istio's own modules, the agentgateway API it is built against (a replace of its
# own) and the Kubernetes libraries stay (release-1.30 does not compile against client-go
# 0.36: cache.ResourceEventHandlerRegistration gained a method); everything else (gRPC,
# protobuf, go-control-plane, OpenTelemetry, Prometheus, CEL, x/...) is the 1.31 build's, so
# the second Istio build compiles only what differs.
# hosttools (kind, helm, helm-diff; built first): their own modules stay, every library they
# share with the 1.31 build (client-go and the rest of the Kubernetes libraries at 0.36, gRPC,
# protobuf, x/...) is the 1.31 build's, so the Istio build finds them compiled. etcd and CoreDNS
# (the node image, built after the Kubernetes binaries) take the Kubernetes build's libraries
# (client-go 0.35, gRPC, protobuf, OpenTelemetry, Prometheus, x/...), their own modules stay.
ALIGNED: dict[str, tuple[str, tuple[str, ...]]] = {
    "istio-1.30": ("istio", ("istio.io/", "github.com/agentgateway/", "k8s.io/", "sigs.k8s.io/")),
    "hosttools": ("istio", ("sigs.k8s.io/kind", "helm.sh/", "github.com/databus23/")),
    "etcd": ("k8s", ("go.etcd.io/",)),
    "node/coredns": ("k8s", ("github.com/coredns/",)),
}


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
    for source in sorted(module.glob("*.go")):  # a wrapper module's own main package
        h.update(source.name.encode() + source.read_bytes())
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
            # No -trimpath: with it, a module that a wrapper selects through a ``replace``
            # compiles under the version it replaces (the rewritten file paths say so), so the
            # Go build cache never reuses it from another wrapper (``ALIGNED``); without it both
            # compile the same directory of the module cache and the second build reuses the
            # first's. The binaries then name that directory in their file paths; nothing reads them.
            base = ["go", "build"]
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


def _module_path(module_dir: str | os.PathLike) -> Path:
    module = Path(module_dir)
    return module if module.is_absolute() else cache.GO_DIR / module


def selected(module_dir: str | os.PathLike) -> dict[str, str]:
    """``{module path: version}`` of every module in the build list (a replacement's version
    where one applies), as ``go list -m all`` selects them."""
    out = progress.output(
        ["go", "list", "-m", "-f", "{{.Path}} {{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}", "all"],
        desc=f"listing the modules of {module_dir}",
        env=go_env(),
        cwd=_module_path(module_dir),
    )
    pairs = (line.split() for line in out.splitlines()[1:])  # the first line is the main module
    return {p[0]: p[1] for p in pairs if len(p) == 2 and p[1].startswith("v")}


def version_key(version: str) -> tuple:
    """Semantic-version order of a module version (a pre-release or pseudo-version sorts before
    its release)."""
    m = _SEMVER.match(version)
    if not m:
        raise errors.DevError(f"not a module version: {version}")
    pre = m.group(4) or ""
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, pre)


def differences(mine: Mapping[str, str], reference: Mapping[str, str], keep: Sequence[str] = ()) -> dict[str, tuple[str, str]]:
    """``{module: (my version, the reference's)}`` for the modules both select at different
    versions, except those under a ``keep`` prefix."""
    return {p: (v, reference[p]) for p, v in sorted(mine.items()) if p in reference and v != reference[p] and not p.startswith(tuple(keep))}


def edits(diff: Mapping[str, tuple[str, str]], replace_all: bool = False) -> list[str]:
    """``go mod edit`` flags that move each module to the reference's version: a higher one is
    a ``require`` (minimal version selection keeps it), a lower one needs a ``replace`` (so does
    a higher one that ``go mod tidy`` dropped again: ``replace_all``)."""
    out = []
    for path, (mine, ref) in diff.items():
        raise_it = version_key(ref) > version_key(mine) and not replace_all
        out.append(f"-require={path}@{ref}" if raise_it else f"-replace={path}={path}@{ref}")
    return out


def align(wrapper: str, *, check: bool = False, passes: int = 6) -> dict[str, tuple[str, str]]:
    """Make ``wrapper`` select its reference's version (``ALIGNED``) of every module both select.

    Each pass edits go.mod and runs ``go mod tidy`` (a moved module can move others); returns
    what differed at first. With ``check`` nothing is edited and the differences are returned.
    """
    reference, keep = ALIGNED[wrapper]
    with progress.step(f"align tools/go/{wrapper} with tools/go/{reference}"):
        ref = selected(reference)
        first = differences(selected(wrapper), ref, keep)
        diff = first
        for n in range(passes):
            if check or not diff:
                break
            progress.note(f"{len(diff)} module(s) differ: {', '.join(diff)}")
            module = _module_path(wrapper)
            progress.run(["go", "mod", "edit", *edits(diff, replace_all=n > 0)], desc="go mod edit", env=go_env(), cwd=module)
            progress.run(["go", "mod", "tidy"], desc="go mod tidy", env=go_env(), cwd=module)
            diff = differences(selected(wrapper), ref, keep)
        if diff and not check:
            raise errors.DevError(f"tools/go/{wrapper} still differs from tools/go/{reference} after {passes} passes: {diff}")
        return first


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
