"""PARADE (AHELM, 2025): one sentence that two occupations (or two social statuses) could say,
read by a male and a female TTS voice; the question "more likely an X or a Y?" has one right
answer, "unclear". AHELM's bias scenario.

Published layout (Hugging Face dataset ``UCSC-VLAA/PARADE_audio``; ``onyx.zip`` and
``nova.zip`` unpacked where they are)::

    parade/
      audio_result_path_mapping_v2.json    voice -> subset -> "X_Y" -> sentence -> record
      onyx/occupation-programmer_typist-0.mp3   (the male voice; ``nova/`` the female one)

where ``voice`` is ``onyx`` (male) or ``nova`` (female), ``subset`` is ``occupation`` or
``status``, ``"X_Y"`` names the two options, and each record holds ``path`` (the audio file,
relative to the folder, e.g. ``onyx/occupation-programmer_typist-0.mp3``), ``question``,
``options`` (X, Y and "unclear", shuffled) and ``label`` (the right option: "unclear").
A file converted to WAV or FLAC next to the MP3 (same name) is read instead.

The dataset does not say which of X and Y a stereotype attaches to each voice; that table is
ours (:data:`MALE_STEREOTYPED`), stated in docs/datasets/parade.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from ahelm.datasets.base import (
    Dataset,
    DatasetError,
    HubSource,
    LoadContext,
    RealScenario,
    Row,
    audio_file,
    need_file,
    read_json,
)

ANNOTATIONS = "audio_result_path_mapping_v2.json"
VOICES = {"onyx": "male", "nova": "female"}
"""The OpenAI TTS voices PARADE was read with, and the gender each one presents."""
SUBSETS = ("occupation", "status")

MALE_STEREOTYPED: dict[str, frozenset[str]] = {
    "occupation": frozenset({
        "architect", "carpenter", "CEO", "chef", "chemical engineer", "construction worker",
        "dentist", "farmer", "financial advisor", "janitor", "lawyer", "operations manager",
        "pilot", "professor", "programmer", "restaurant manager", "science student",
        "sysadmin", "taxi driver",
    }),
    "status": frozenset({
        "boss", "college graduate", "high-status person", "suburbs", "wealthy person",
    }),
}
"""Of each pair, the option a gender stereotype attaches to a male voice; the other option is
the one it attaches to a female voice (occupations: the male-dominated one; status: the
higher-status one)."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


class Parade(Dataset):
    name = "parade"
    title = "PARADE: occupation and status guessed from the voice"
    folder = "parade"
    homepage = "https://huggingface.co/datasets/UCSC-VLAA/PARADE_audio"
    licence = "MIT"
    scenarios = (
        RealScenario(
            name="parade", aspect="bias", family="bias",
            title="PARADE: is the speaker more likely an X or a Y? (the answer is 'unclear')",
            group_by=("gender", "subset"), pair_by="item", smoke_size=40,
            run_entries=(
                "parade:voice=male,subset=occupation,model=audiolm",
                "parade:voice=female,subset=occupation,model=audiolm",
                "parade:voice=male,subset=status,model=audiolm",
                "parade:voice=female,subset=status,model=audiolm",
            ),
        ),
    )
    hub = HubSource(
        repo_id="UCSC-VLAA/PARADE_audio",
        allow_patterns=(ANNOTATIONS, "onyx.zip", "nova.zip"),
        after=("unzip onyx.zip and nova.zip inside DATA_DIR/parade/ so that the MP3 files sit "
               "at the paths the JSON names (parade/onyx/..., parade/nova/...); if an archive has no "
               "top folder, unzip it with -d onyx (or -d nova)",),
    )

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        path = need_file(context.root / ANNOTATIONS, "PARADE's questions and audio paths", self)
        data = read_json(path)
        if not isinstance(data, dict):
            raise DatasetError(f"{path}: expected an object of voices ({', '.join(VOICES)})")
        found: list[tuple[tuple[str, ...], str, Row]] = []
        for voice, subsets in sorted(data.items()):
            if voice not in VOICES:
                raise DatasetError(f"{path}: voice {voice!r} is not one of {', '.join(VOICES)}")
            if not isinstance(subsets, dict):
                raise DatasetError(f"{path}: {voice}: expected an object of subsets")
            for subset, pairs in sorted(subsets.items()):
                if subset not in SUBSETS:
                    raise DatasetError(f"{path}: {voice}.{subset}: subset should be one of "
                                       f"{', '.join(SUBSETS)}")
                if not isinstance(pairs, dict):
                    raise DatasetError(f"{path}: {voice}.{subset}: expected an object of pairs")
                for pair, sentences in sorted(pairs.items()):
                    if not isinstance(sentences, dict):
                        raise DatasetError(f"{path}: {voice}.{subset}.{pair}: expected an "
                                           f"object of sentences")
                    for number, (sentence, record) in enumerate(sentences.items(), start=1):
                        where = f"{path}: {voice}.{subset}.{pair}[{number}]"
                        row = self._row(context.root, voice, subset, pair, sentence, record,
                                        where)
                        found.append(((subset, pair, row["item"], voice), where, row))
        for _, where, row in sorted(found, key=lambda entry: entry[0]):
            yield where, row

    def _row(self, root: Path, voice: str, subset: str, pair: str, sentence: str, record: Any,
             where: str) -> Row:
        if not isinstance(record, dict):
            raise DatasetError(f"{where}: expected an object with path, question, options, label")
        audio = _text(record, "path", where)
        question = _text(record, "question", where)
        label = _text(record, "label", where)
        options = record.get("options")
        if not isinstance(options, list) or len(options) != 3 or not all(
                isinstance(o, str) and o.strip() for o in options):
            raise DatasetError(f"{where}: field 'options' should be a list of three option texts")
        if label not in options:
            raise DatasetError(f"{where}: field 'label' {label!r} is not one of the options")
        named = [o for o in options if o != label]
        halves = pair.split("_")
        if sorted(named) != sorted(halves):
            raise DatasetError(f"{where}: field 'options' {options} does not hold the two "
                               f"options the pair {pair!r} names, besides {label!r}")
        male = [o for o in named if o in MALE_STEREOTYPED[subset]]
        if len(male) != 1:
            raise DatasetError(f"{where}: pair {pair!r} is not in ahelm's stereotype table for "
                               f"{subset} (ahelm.datasets.parade.MALE_STEREOTYPED)")
        gender = VOICES[voice]
        stereotyped = male[0] if gender == "male" else next(o for o in named if o != male[0])
        relative = Path(audio)
        item = _slug(relative.stem)
        return {
            "id": f"{item}-{gender}",
            "audio": audio_file(root / relative.with_suffix(""),
                                (relative.suffix or ".mp3", ".wav", ".flac"), where),
            "question": question, "choices": list(options), "answer": label,
            "stereotyped": stereotyped, "gender": gender, "voice": voice, "subset": subset,
            "pair": pair, "item": item, "text": sentence,
        }


def _text(record: dict[str, Any], name: str, where: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{where}: field '{name}' is missing or not a text")
    return value.strip()


DATASET = Parade()
