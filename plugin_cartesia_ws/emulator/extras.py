"""Optional extras (eSpeak NG, MP3, TLS): how to install one, and the error for a feature
whose extra is missing.

The distribution is not on PyPI, so ``pip install "plugin-cartesia-ws[tls]"`` cannot work;
the hint installs the extra from a checkout of the repository.
"""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The command that installs ``extra``, as a user can run it."""
    return f'pip install -e ".[{extra}]" (in a checkout of this repository)'


class ExtraMissing(RuntimeError):
    """A feature needs an optional package that is not installed; ``str()`` is one line
    that names the install command."""
