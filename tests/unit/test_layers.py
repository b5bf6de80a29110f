"""The layer rules of the package, checked on the source (every import, also those inside functions).

import-linter cannot check this layout: its graph builder (grimp) walks the folder of the top-level package only, and
netgpt's components live in their own top-level folders (pyproject's package-dir: netgpt.controller is controller/).
So the rules are written here, against the same mapping that installs the package.

Layers, highest first. A module may import its own layer's modules and any lower layer, never a higher one:

    netgpt.cli                                     the commands
    netgpt.demo                                    the main job
    netgpt.stack                                   services, the Mininet runner and its controller feed
    netgpt.controller | netgpt.edge_agent | netgpt.intent
                                                   the components; they talk to each other only through Redis
                                                   (the controller may use the intent compiler)
    netgpt.models                                  language models, fine-tuning, serving
    netgpt.mininet_topos                           topologies (know nothing of Redis or of any component)
    netgpt.core                                    settings, messages, bus
"""
from __future__ import annotations

import ast
import graphlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS = [
    {"netgpt.cli"},
    {"netgpt.demo"},
    {"netgpt.stack"},
    {"netgpt.controller", "netgpt.edge_agent", "netgpt.intent"},
    {"netgpt.models"},
    {"netgpt.mininet_topos"},
    {"netgpt.core"},
]
# Within the components' layer, who may use whom (everything else in that layer is independent).
ALLOWED_SIDEWAYS = {("netgpt.controller", "netgpt.intent")}


def package_dirs() -> dict[str, Path]:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {name: ROOT / name.replace(".", "/") for name in tool["packages"]}
    for name, folder in tool["package-dir"].items():
        dirs[name] = ROOT / folder
    return dirs


def module_files() -> dict[str, Path]:
    """Every module of the installed package -> its file, read through the same mapping as setuptools."""
    files = {}
    dirs = package_dirs()
    for pkg in sorted(dirs, key=len, reverse=True):
        for path in sorted(dirs[pkg].rglob("*.py")):
            rel = path.relative_to(dirs[pkg]).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            files.setdefault(".".join([pkg, *parts]), path)
    return files


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports, at any depth of its code."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def layer_of(module: str) -> tuple[int, str]:
    for i, layer in enumerate(LAYERS):
        for top in layer:
            if module == top or module.startswith(top + "."):
                return i, top
    return -1, "netgpt"  # the package's own __init__


GRAPH = None


def graph() -> dict[str, set[str]]:
    global GRAPH
    if GRAPH is None:
        files = module_files()
        GRAPH = {m: imports_of(m, p, set(files)) for m, p in files.items()}
    return GRAPH


def test_every_module_is_in_a_layer():
    assert not [m for m in graph() if layer_of(m)[0] < 0 and m != "netgpt"]


def test_no_import_goes_up_or_sideways():
    wrong = []
    for module, deps in graph().items():
        here, here_top = layer_of(module)
        for dep in deps:
            there, there_top = layer_of(dep)
            if there < here or (there == here and here_top != there_top
                                and (here_top, there_top) not in ALLOWED_SIDEWAYS):
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle():
    try:
        tuple(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_the_rules_see_imports_inside_functions():
    # the check must read function-level imports too, or it would pass on the code it is meant to catch
    deps = graph()["netgpt.cli.demo"]
    assert "netgpt.demo.run" in deps
