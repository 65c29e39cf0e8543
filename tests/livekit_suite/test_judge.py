"""The judge's word error rate: the scoring rules, checked without any audio."""

from __future__ import annotations

import pytest

from .judge import normalize, wer


def test_case_punctuation_and_contractions_do_not_count() -> None:
    assert normalize("It's NOT late, isn't it?") == ["it", "is", "not", "late", "is", "not", "it"]
    assert wer("Don't stop, we're close.", "do not stop we are close") == 0.0


@pytest.mark.parametrize(
    ("hypothesis", "errors"),
    [
        ("the cat sat on the mat", 0),
        ("the cat sat on a mat", 1),  # substitution
        ("the cat on the mat", 1),  # deletion
        ("the black cat sat on the mat", 1),  # insertion
        ("", 6),
        ("a dog ran by", 6),  # nothing matches: 4 substitutions, 2 deletions
    ],
)
def test_errors_are_word_edits_over_the_reference_length(hypothesis: str, errors: int) -> None:
    assert wer("The cat sat on the mat.", hypothesis) == pytest.approx(errors / 6)


def test_a_repeated_sentence_is_far_over_the_bound() -> None:
    sentence = "Nobody said much, because the wind had been cold all day."
    assert wer(sentence, f"{sentence} {sentence}") == 1.0
