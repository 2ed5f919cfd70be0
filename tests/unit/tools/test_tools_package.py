"""tools/ is a package like any other: no import circles, no imports hidden in functions, no
sys.path edits outside the bootstrap launcher, every module importable."""

import ast
import importlib
import pathlib

import pytest

TOOLS = pathlib.Path(__file__).resolve().parents[3] / "tools"
PACKAGE = TOOLS / "meshops_dev"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def package_imports(path):
    """(module-level imports of sibling modules, imports of siblings inside functions)."""
    tree = ast.parse(path.read_text())
    top, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
            if node.col_offset == 0:
                top.update(names)
            else:
                nested.extend(names)
    return top, nested


def test_no_import_cycles():
    graph = {name: package_imports(PACKAGE / f"{name}.py")[0] for name in MODULES}
    done, path = set(), []

    def visit(name):
        if name in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        path.append(name)
        for dep in sorted(graph.get(name, ())):
            visit(dep)
        path.pop()
        done.add(name)

    for name in MODULES:
        visit(name)


@pytest.mark.parametrize("name", MODULES)
def test_no_package_import_inside_a_function(name):
    assert package_imports(PACKAGE / f"{name}.py")[1] == []


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(f"meshops_dev.{name}")


def test_only_the_launcher_edits_sys_path():
    editing = sorted(str(p.relative_to(TOOLS)) for p in [*TOOLS.rglob("*.py"), TOOLS / "dev"] if "sys.path.insert" in p.read_text())
    # collection.importable() puts the collection link on sys.path, as ansible-test does
    assert editing == ["dev", "meshops_dev/collection.py"]


def test_the_package_is_the_installed_one():
    import meshops_dev  # noqa: PLC0415

    assert pathlib.Path(meshops_dev.__file__).resolve().parent == PACKAGE
