"""Issue 11's and 22's structure rules, checked so they hold: the modules of the plugin and
of agent/ import each other without cycles (not even for type checking); nothing imports a
`__main__`; in agent/, the local stack (agent.dev) and the simulation (agent.simulate) may
import the product, never the reverse, and the product runs without them; no module is over
400 lines unless its docstring says why (the phrase "Over 400 lines")."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("plugin_cartesia_ws", "agent")
TOOLS = ("agent.dev", "agent.simulate")  # the local stack and the simulation
MAX_LINES = 400
REASON = "Over 400 lines"


def _module(name: str) -> str | None:
    """`name` if it is a module or package of this repository, else None."""
    path = REPO / name.replace(".", "/")
    return name if path.with_suffix(".py").exists() or (path / "__init__.py").exists() else None


def _imports(path: Path) -> set[str]:
    """First-party modules a module imports, anywhere in it (TYPE_CHECKING blocks and
    function bodies too)."""
    parts = path.relative_to(REPO).with_suffix("").parts
    package = ".".join(parts if parts[-1] == "__init__" else parts[:-1])
    package = package.removesuffix(".__init__")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(m for a in node.names if (m := _first_party(a.name)))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # `from x import y`: y is a module of x, or a name defined in x
            modules = {m for a in node.names if (m := _first_party(f"{target}.{a.name}"))}
            found.update(modules or {m for m in [_first_party(target)] if m})
    return found


def _first_party(name: str) -> str | None:
    return _module(name) if name.split(".")[0] in PACKAGES else None


def _name(path: Path) -> str:
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "node_modules" not in path.parts:
                graph[_name(path)] = _imports(path) - {_name(path)}
    return graph


def _is_package(name: str) -> bool:
    return (REPO / name.replace(".", "/") / "__init__.py").exists()


def _in(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep] if dep in path else [node, dep]
            if dep not in state and (found := visit(dep, [*path, dep])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_sees_every_form_of_import() -> None:
    found = _imports(REPO / "agent" / "simulate" / "room.py")
    assert {"agent.dev.local_stack", "agent.dev.audio_io"} <= found  # top level and lazy
    assert "agent.simulate.cli" in _imports(REPO / "agent" / "simulate" / "__init__.py")
    assert "agent.worker" in _imports(REPO / "agent" / "simulate" / "cli.py")  # from .. import


def test_modules_import_each_other_without_cycles() -> None:
    """Packages are left out: an __init__ that re-exports its modules is not a cycle."""
    graph = {k: v for k, v in _graph().items() if not _is_package(k)}
    graph = {k: {d for d in v if not _is_package(d)} for k, v in graph.items()}
    assert _cycle(graph) is None


def test_nothing_imports_a_main_module() -> None:
    """`python -m` runs a __main__ as `__main__`; importing it too loads it twice."""
    importers = sorted(k for k, v in _graph().items() if any(d.endswith("__main__") for d in v))
    assert importers == []


def test_the_product_never_imports_the_local_stack_or_the_simulation() -> None:
    wrong = sorted(
        f"{module} imports {dep}"
        for module, deps in _graph().items()
        if not _in(module, TOOLS) and module != "agent"
        for dep in deps
        if _in(dep, TOOLS) or (module.startswith("plugin_cartesia_ws") and _in(dep, ("agent",)))
    )
    assert wrong == []


def test_the_worker_runs_without_the_local_stack_and_the_simulation(tmp_path: Path) -> None:
    """The product alone (agent/ without dev/ and simulate/): the worker imports, the CLI
    answers, and the tool commands say in one line what is missing."""
    shutil.copytree(
        REPO / "agent",
        tmp_path / "agent",
        ignore=shutil.ignore_patterns("dev", "simulate", "__pycache__"),
    )
    code = "import agent.worker, agent.cli, agent.token, agent.preflight, agent.job_slots"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "agent", "playground"], cwd=tmp_path, capture_output=True, text=True
    )
    assert (run.returncode, run.stderr.strip()) == (
        2,
        "error: `playground` is not available in this version (agent.dev is missing)",
    )


def test_no_module_is_over_400_lines_without_a_reason() -> None:
    too_long = []
    for folder in ("plugin_cartesia_ws", "agent", "benchmarks", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            text = path.read_text()
            if text.count("\n") > MAX_LINES and REASON not in (
                ast.get_docstring(ast.parse(text)) or ""
            ):
                too_long.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
    assert too_long == []


def test_the_plugin_loads_without_the_emulator_encoder_or_resampler() -> None:
    """A user's agent imports the plugin only: the emulator (its encoder, the resampler,
    aiohttp's server side) stays out of that process."""
    import subprocess
    import sys

    code = (
        "import sys, plugin_cartesia_ws; print(sorted(m for m in sys.modules if 'emulator' in m))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
