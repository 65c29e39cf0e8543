"""Turns the results dict into targets (PASS/MISS), a markdown report and PNG plots."""

from __future__ import annotations

from .format import NAMES, SHAPES_LABEL, cell
from .markdown import markdown
from .plots import plots
from .targets import CPU_STREAMS, targets

__all__ = ["CPU_STREAMS", "NAMES", "SHAPES_LABEL", "cell", "markdown", "plots", "targets"]
