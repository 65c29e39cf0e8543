"""Pure: where a sentence can be split with the least damage to prosody, for the first chunk
that has to leave before its sentence (or clause) is complete.

Cartesia renders each chunk as its own intonation unit, so a forced cut should fall where a
speaker could pause anyway: after a comma-like mark, else before a word that opens a new
phrase (a conjunction, a relative pronoun, a preposition), else at a plain word boundary
that does not strand a word needing its right neighbour ("the", "to", "will", "my"...). Never
between the words of a number ("twenty | two", "42 | percent"). The ranks were checked on
the opening paragraphs of 600 real assistant replies (``benchmarks/corpus``); the
distribution of the cuts they give is in the benchmark report.
"""

from __future__ import annotations

from typing import Final

# Words that open a phrase: a cut just before them is a natural pause.
CONJUNCTIONS: Final = frozenset(
    "but so because although though while whereas unless until since if when whenever"
    " once after before than yet whether".split()
)
# "and"/"or" join clauses as often as single words ("accuracy and repeatability"), so a
# pause before them ranks below a preposition; so does the start of a noun phrase.
COORDINATORS: Final = frozenset("and or nor".split())
PHRASE_OPENERS: Final = frozenset(
    "the a an my your our their his her its this these those some any every each to".split()
)
RELATIVES: Final = frozenset("which who whom whose that where".split())
PREPOSITIONS: Final = frozenset(
    "in on at for with from by about into onto through during over under between without"
    " within across along around toward towards near via per including like against"
    " beyond after before".split()
)
# Words that lean on the next one: a chunk must not end with them.
LEANING: Final = frozenset(
    "a an the my your our their his her its this these those some any every each no another"
    " to of in on at for with from by about into onto through over under between without"
    " within across along around toward towards near via per against beyond during"
    " including and or but so because if when than as that which who whose where"
    " is are was were be been being am will would can could should shall may might must do"
    " does did has have had not very more most less least quite really just also i we they"
    " he she it's i'm you're we're they're i'll you'll we'll i'd you'd we'd let's please"
    " mr mrs ms dr st".split()
)
NUMBER_WORDS: Final = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    " fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy"
    " eighty ninety hundred thousand million billion trillion point half quarter".split()
)
UNITS: Final = frozenset(
    "percent dollars dollar cents cent euros euro pounds pound yen degrees degree am pm a.m."
    " p.m. minutes minute hours hour seconds second days day weeks week months month years"
    " year miles mile kilometers km meters kg pounds lbs ounces oz grams mph".split()
)
_STRIP: Final = "\"'()[]{}«»“”‘’¿¡"

# Ranks of a forced cut, best first. 0 = never at a deadline.
PUNCTUATION, BEFORE_CONJUNCTION, BEFORE_RELATIVE, BEFORE_PREPOSITION = 7, 6, 5, 4
BEFORE_AND_OR, BEFORE_PHRASE, PLAIN = 3, 2, 1
RANK_NAMES: Final = {
    PUNCTUATION: "punctuation",
    BEFORE_CONJUNCTION: "before a conjunction",
    BEFORE_RELATIVE: "before a relative pronoun",
    BEFORE_PREPOSITION: "before a preposition",
    BEFORE_AND_OR: "before and/or",
    BEFORE_PHRASE: "before a determiner or to",
    PLAIN: "plain word boundary",
}


def _bare(word: str) -> str:
    return word.strip(_STRIP).lower()


def _is_numeric(word: str) -> bool:
    bare = _bare(word).rstrip(".,;:!?%")
    if any(ch.isdigit() for ch in bare):
        return True
    return bare in NUMBER_WORDS or "-" in bare and all(p in NUMBER_WORDS for p in bare.split("-"))


def rank(before: str, after: str | None, punctuated: bool) -> int:
    """How good a pause falls between word ``before`` and word ``after`` (None: not arrived
    yet, so unknown). ``punctuated``: ``before`` ends with a clause mark (, ; : —)."""
    if punctuated:
        return PUNCTUATION
    if _bare(before) in LEANING or before.rstrip().endswith(("-", "$", "#", "&")):
        return 0
    if after is None:
        return PLAIN if not _is_numeric(before) else 0  # "twenty" may be "twenty two"
    nxt = _bare(after)
    if _is_numeric(before) and (_is_numeric(after) or nxt.rstrip(".,;:!?") in UNITS):
        return 0
    if nxt in CONJUNCTIONS:
        return BEFORE_CONJUNCTION
    if nxt in RELATIVES:
        return BEFORE_RELATIVE
    if nxt in PREPOSITIONS:
        return BEFORE_PREPOSITION
    if nxt in COORDINATORS:
        return BEFORE_AND_OR
    if nxt in PHRASE_OPENERS:
        return BEFORE_PHRASE
    if nxt[:1] in "%&" or nxt in ("'s", "n't"):
        return 0
    return PLAIN
