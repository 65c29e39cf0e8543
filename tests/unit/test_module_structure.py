"""Issue 11's structure rules, checked so they hold: the plugin's modules import each other
without cycles (not even for type checking), and no module is over 400 lines unless its
docstring says why (the phrase "Over 400 lines")."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "plugin_cartesia_ws"
MAX_LINES = 400
REASON = "Over 400 lines"


def _package_imports(path: Path) -> set[str]:
    """Sibling modules a plugin module imports, anywhere in it (TYPE_CHECKING blocks too)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
        elif node.module and node.module.startswith("plugin_cartesia_ws"):
            target = node.module
        else:
            continue
        names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
        found.update(n for n in names if (REPO / (n.replace(".", "/") + ".py")).exists())
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        graph[name] = _package_imports(path) - {name}
    return graph


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


def test_plugin_modules_import_each_other_without_cycles() -> None:
    graph = {k: v for k, v in _graph().items() if not k.endswith("__init__")}
    graph = {k: {d for d in v if not d.endswith("__init__")} for k, v in graph.items()}
    assert _cycle(graph) is None


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
