"""The documentation stays true: relative links resolve (files and #anchors), the test file
shown in docs/emulator.md runs as written, every worker setting is documented, and every
`make` target and `python -m` module the docs name exists."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md", *ROOT.glob("docs/*.md")])

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code (links there are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The #anchors GitHub makes for the headings of `path` (inline code keeps its text)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(path: Path) -> list[str]:
    """Every relative link in `path` whose file, or #anchor in a Markdown file, is missing."""
    problems = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.name}: {target} -> {dest} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.name}: {target} -> no heading #{anchor} in {dest.name}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    assert broken_links(doc) == []


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading\n\n## `code` in it\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading) [ok](there.md#code-in-it) [ok](#local)\n"
        "[web](https://example.com/missing) `[not a link](missing.md)`\n"
        "```\n[in code](missing.md)\n```\n"
        "## Local\n"
        "[gone](missing.md) ![gone](img/missing.png) [bad anchor](there.md#nowhere)\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert "missing.md" in problems[0] and "missing.png" in problems[1]
    assert "#nowhere" in problems[2]


def test_the_docs_list_the_pages() -> None:
    """Every page in docs/ is reachable from the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ROOT.glob("docs/*.md"):
        assert f"](docs/{page.name})" in readme, f"README does not link docs/{page.name}"


def snippet(path: Path, name: str) -> str:
    """The fenced code block that follows `<!-- docs-snippet: name -->` in `path`."""
    text = path.read_text(encoding="utf-8")
    m = re.search(rf"<!-- docs-snippet: {re.escape(name)} -->\s*```\w*\n(.*?)\n```", text, re.S)
    assert m, f"no docs-snippet {name!r} in {path.name}"
    return m.group(1) + "\n"


def test_the_own_tests_example_runs_as_written(tmp_path: Path) -> None:
    """docs/emulator.md shows a complete test file; run it as a user would: a file of its
    own, outside this repository's pytest configuration."""
    code = snippet(ROOT / "docs" / "emulator.md", "own-tests")
    tests = re.findall(r"^async def (test_\w+)", code, re.M)
    assert len(tests) >= 2
    (tmp_path / "test_my_agent.py").write_text(code, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_agent.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert f"{len(tests)} passed" in run.stdout, run.stdout[-2000:]


def test_every_worker_setting_is_documented() -> None:
    worker = (ROOT / "docs" / "worker.md").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in ENV_NAMES:
        assert f"| `{name}` |" in worker, f"{name} is missing from the table in docs/worker.md"
        assert re.search(rf"^{name}=", example, re.M), f"{name} is missing from .env.example"


def all_docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in DOCS)


def test_every_make_target_named_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+):", makefile, re.M))
    named = set(re.findall(r"`make ([\w-]+)", all_docs_text()))
    named |= set(re.findall(r"^make ([\w-]+)", all_docs_text(), re.M))
    assert named, "no make target found in the docs"
    assert sorted(named - targets) == []


def test_every_python_module_named_exists() -> None:
    modules = set(re.findall(r"python -m ([A-Za-z_][\w.]*)", all_docs_text()))
    assert "plugin_cartesia_ws.emulator" in modules
    missing = [m for m in sorted(modules) if importlib.util.find_spec(m) is None]
    assert missing == []


def test_every_agent_command_named_exists() -> None:
    named = set(re.findall(r"python -m agent ([a-z]+)", all_docs_text()))
    run = subprocess.run(
        [sys.executable, "-m", "agent", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    choices = re.search(r"\{([a-z,]+)\}", run.stdout)
    assert choices, run.stdout
    assert sorted(named - set(choices.group(1).split(","))) == []


def _drop_in_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Use the plugin in your own agent")
    return readme[start : readme.index("\n## ", start + 1)]


def test_the_drop_in_example_installs_what_it_imports() -> None:
    """Issue 22: the README's example imported livekit.plugins.openai and silero after a
    plain `pip install .`, which has neither. Every LiveKit plugin it imports must come
    with the install command shown before it."""
    import tomllib

    section = _drop_in_section()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    [install] = re.findall(r"^pip install (\S+)", section, re.M)
    wanted = re.findall(r"\[(\w[\w,]*)\]", install)
    names = set(project["dependencies"])
    for extra in ",".join(wanted).split(",") if wanted else []:
        names |= set(extras[extra])
    installed = {re.split(r"[<>=\[ ]", n)[0] for n in names}
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    imported = re.findall(r"^from livekit\.plugins import (.+)$", code.group(1), re.M)
    plugins = {p.strip() for line in imported for p in line.split(",")}
    assert plugins and {f"livekit-plugins-{p}" for p in plugins} <= installed


def test_the_drop_in_example_runs_as_written(tmp_path: Path) -> None:
    code = re.search(r"```python\n(.*?)```", _drop_in_section(), re.S)
    assert code is not None
    (tmp_path / "my_agent.py").write_text(code.group(1), encoding="utf-8")
    env = {**os.environ, "OPENAI_API_KEY": "sk-unused", "CARTESIA_API_KEY": "sk_car_unused"}
    run = subprocess.run(
        [sys.executable, "my_agent.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_make_says_what_takes_long_and_why_tests_skip() -> None:
    """Issue 22: `make test` printed "3 skipped" without the reasons the README promises, and
    the first `make demo` was silent for a minute while it installed."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    [pytest_line] = [line for line in makefile.splitlines() if "-m pytest" in line]
    report = [flag for flag in pytest_line.split() if flag.startswith("-r")]
    assert report and "s" in report[0][2:]  # every skip with its reason (and failures named)
    demo_install = makefile[makefile.index("$(DEMO_STAMP):") :].split("\n\n")[0]
    assert "@echo" in demo_install and "about a minute" in demo_install


def test_the_architecture_page_shows_the_turn_machines_table() -> None:
    from plugin_cartesia_ws import turn

    page = (ROOT / "docs" / "architecture.md").read_text()
    for src, events, to in turn._ROWS:
        row = (
            f"| {', '.join(s.name for s in src)} | {', '.join(e.name for e in events)} "
            f"| {', '.join(s.name for s in to) or '(unchanged)'} |"
        )
        assert row in page, f"docs/architecture.md lacks the transition row {row}"
