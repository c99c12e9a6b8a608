"""Short-answer matching: AHELM's quasi-exact and quasi-prefix exact match.

Both compare after the usual normalisation of QA benchmarks: Unicode NFKC, lower case, hyphens as
spaces, thousands separators dropped, decimal numbers kept whole, other punctuation and the
articles "a", "an", "the" removed, whitespace collapsed. Prefix
matching is by whole words, so "7" does not match "70" and "paris" does not match "parisian".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")


def normalise_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"(?<=\w)[-\u2010\u2011\u2013](?=\w)", " ", text)
    text = _THOUSANDS.sub("", text)  # 1,500 -> 1500
    text = _DECIMAL.sub("point", text)  # 7.5 stays one word, unlike 7 and 5
    text = _PUNCT.sub("", text)  # deleted, as HELM does: U.S. -> us, don't -> dont
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def quasi_exact_match(output: str, answers: Sequence[str]) -> bool:
    said = normalise_answer(output)
    return any(said == normalise_answer(answer) for answer in answers)


def quasi_prefix_exact_match(output: str, answers: Sequence[str]) -> bool:
    """The normalised output begins with the words of some normalised answer."""
    said = normalise_answer(output).split()
    for answer in answers:
        words = normalise_answer(answer).split()
        if words and said[: len(words)] == words:
            return True
    return False
