"""Multiple-choice prompts and strict, fair answer parsing.

AHELM lists the options as "A. ...", "B. ..." and asks for the letter alone. Models often answer
in another form; the parser accepts exactly these forms and nothing else:

- the letter alone, in either case: ``A``, ``a``, ``A.``, ``A)``, ``(A)``, ``[A]``, ``**A**``;
- the exact text of one option (case, surrounding whitespace and final punctuation ignored);
- the letter followed by that same option's text (``A. Same speaker``, ``(A) Same speaker``).

Anything else ("I think A", "Either A or B", a letter with another option's text, a letter that
is not an option) is a format failure: counted apart from wrong answers, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

LETTERS = "ABCDEFGHIJ"
INSTRUCTION = "Answer with the letter of the correct option only."
_LETTER_FORMS = re.compile(r"^(?:\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|([A-Za-z])\s*[\)\.:]?)$")
_LETTER_THEN_TEXT = re.compile(r"^[\(\[]?([A-Za-z])[\)\]\.:]\s+(.+)$", re.DOTALL)
_EMPHASIS = re.compile(r"^(\*\*|__|\*|_|`)(.+)\1$", re.DOTALL)


def options_block(choices: Sequence[str]) -> str:
    """``A. first\\nB. second ...``"""
    if not 2 <= len(choices) <= len(LETTERS):
        raise ValueError(f"a question needs 2 to {len(LETTERS)} options, got {len(choices)}")
    return "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(choices))


def mc_prompt(question: str, choices: Sequence[str]) -> str:
    return f"{question.strip()}\n\n{options_block(choices)}\n\n{INSTRUCTION}"


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    text = re.sub(r"\s+", " ", text)
    return text.rstrip(".!;:").strip().casefold()


def _strip_emphasis(text: str) -> str:
    text = text.strip()
    match = _EMPHASIS.match(text)
    return match.group(2).strip() if match else text


def parse_choice(output: str, choices: Sequence[str]) -> int | None:
    """The index of the option the output names, or None for a format failure."""
    text = _strip_emphasis(output)
    if not text:
        return None
    letters = LETTERS[: len(choices)]
    match = _LETTER_FORMS.match(text)
    if match:
        letter = next(g for g in match.groups() if g).upper()
        return letters.index(letter) if letter in letters else None
    folded = _fold(text)
    by_text = [i for i, choice in enumerate(choices) if _fold(choice) == folded]
    if len(by_text) == 1:
        return by_text[0]
    match = _LETTER_THEN_TEXT.match(text)
    if match:
        letter = match.group(1).upper()
        if letter in letters:
            index = letters.index(letter)
            if _fold(match.group(2)) == _fold(choices[index]):
                return index
    return None
