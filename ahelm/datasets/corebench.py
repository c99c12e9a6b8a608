"""CoRe-Bench (AHELM, 2025): long multi-speaker TTS conversations with questions that need
inference across turns; some cannot be answered from the audio, and their answer is
"unanswerable". AHELM's new reasoning scenario.

Published layout (Hugging Face dataset ``stanford-crfm/COnversationalREasoningBench_v0.1``,
the copy AHELM reads)::

    corebench/
      test/instances.jsonl     one JSON object a line: audio_path, question, answer (+ others)
      test/audio/<audio_path>  the conversation (MP3; WAV or FLAC of the same name also read)

A row's ``answer`` is the gold answer; the unanswerable questions have the answer
"unanswerable" (any case). Rows carry no id: an instance is named after its conversation file
and its place among that file's questions (``<conversation>-q<n>``), unless a row has ``id``.
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
    field_of,
    need_file,
)
from ahelm.scenarios.base import json_lines

SPLIT = "test"
UNANSWERABLE = "unanswerable"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


class CoreBench(Dataset):
    name = "corebench"
    title = "CoRe-Bench: reasoning over multi-speaker conversations"
    folder = "corebench"
    homepage = "https://huggingface.co/datasets/stanford-crfm/COnversationalREasoningBench_v0.1"
    licence = "MIT (stated for the CoReBench_v1 release; the v0.1 card states none we could read)"
    scenarios = (
        RealScenario(
            name="corebench", aspect="reasoning", family="short_answer",
            title="CoRe-Bench: questions about long multi-speaker conversations",
            group_by=("answerable",), pair_by="conversation", smoke_size=40,
            options={"unanswerable": True},
            run_entries=("corebench:model=audiolm",),
        ),
    )
    hub = HubSource(repo_id="stanford-crfm/COnversationalREasoningBench_v0.1",
                    allow_patterns=("test/*",))

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        path = need_file(context.root / SPLIT / "instances.jsonl",
                         "CoRe-Bench's questions, one JSON object a line", self)
        audio_dir = context.root / SPLIT / "audio"
        asked: dict[str, int] = {}
        for where, record in json_lines(path, DatasetError):
            yield where, self._row(record, audio_dir, asked, where)

    def _row(self, record: dict[str, Any], audio_dir: Path, asked: dict[str, int],
             where: str) -> Row:
        relative = Path(field_of(record, "audio_path", where))
        question = field_of(record, "question", where)
        answer = field_of(record, "answer", where)
        conversation = _slug(relative.with_suffix("").as_posix())
        asked[conversation] = asked.get(conversation, 0) + 1
        given = record.get("id")
        identifier = str(given).strip() if given not in (None, "") else (
            f"{conversation}-q{asked[conversation]}")
        unanswerable = answer.lower() == UNANSWERABLE
        return {
            "id": identifier,
            "audio": audio_file(audio_dir / relative.with_suffix(""),
                                (relative.suffix or ".mp3", ".wav", ".flac"), where),
            "question": question,
            "answers": [UNANSWERABLE] if unanswerable else [answer],
            "answerable": "no" if unanswerable else "yes",
            "conversation": conversation,
        }


DATASET = CoreBench()
