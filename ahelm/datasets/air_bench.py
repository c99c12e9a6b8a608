"""AIR-Bench (Yang et al., ACL 2024): questions about speech, sounds and music; AHELM's music
knowledge (foundation, multiple choice) and its open chat questions (knowledge and reasoning).

Published layout (the Hugging Face repository ``qyang1021/AIR-Bench-Dataset``, downloaded as
it is)::

    air_bench/
      Foundation/Foundation_meta.json      JSON array: path, question, choice_a, choice_b,
                                           choice_c, choice_d, answer_gt, task_name,
                                           dataset_name, uniq_id
      Foundation/<task_name>_<dataset_name>/<path>     e.g. Music_Genre_Recognition_fma/004708.mp3
      Chat/Chat_meta.json                  JSON array: path, question, answer_gt, task_name,
                                           dataset_name, uniq_id, meta_info
      Chat/<task_name>_<dataset_name>/<path>           e.g. speech_dialogue_QA_fisher/0.72_28.54.wav

AHELM runs three foundation tasks (their ``task_name`` spellings are the dataset's, typo
included) and every chat task, split by subject as HELM splits them: ``speech_and_*`` tasks are
"mix", the others go by their first word (speech, sound, music).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from ahelm.datasets.base import (
    Dataset,
    DatasetError,
    HubSource,
    LoadContext,
    RealScenario,
    Row,
    field_of,
    json_array_items,
    need_file,
)

FOUNDATION_TASKS = {
    "Music_Instruments_Classfication": "music_instrument_classification",
    "Music_Genre_Recognition": "music_genre_recognition",
    "Music_AQA": "music_qa",
}
"""The foundation tasks AHELM runs: the meta file's task_name -> HELM's subject name."""

CHAT_SUBJECTS = {
    "air_bench_chat_knowledge": ("sound", "music"),
    "air_bench_chat_reasoning": ("mix", "speech"),
}
_CHOICE_KEYS = ("choice_a", "choice_b", "choice_c", "choice_d")


class AirBench(Dataset):
    name = "air_bench"
    title = "AIR-Bench (foundation music tasks and chat)"
    folder = "air_bench"
    homepage = "https://github.com/OFA-Sys/AIR-Bench"
    licence = ("CC BY-NC 4.0 (the Hub dataset; code Apache 2.0); each clip stays under its "
               "source corpus's licence")
    scenarios = (
        RealScenario(
            name="air_bench_foundation", aspect="knowledge", family="multiple_choice",
            title="AIR-Bench foundation: instruments, genres and questions about music",
            group_by=("task",), smoke_size=40,
            run_entries=tuple(
                f"air_bench_foundation:subject={subject},model=audiolm"
                for subject in FOUNDATION_TASKS.values()),
        ),
        RealScenario(
            name="air_bench_chat_knowledge", aspect="knowledge", family="open_answer",
            title="AIR-Bench chat: open questions about sounds and music",
            group_by=("task",), options={"max_tokens": 200}, smoke_size=40,
            run_entries=("air_bench_chat:subject=sound,num_respondents=1,model=audiolm",
                         "air_bench_chat:subject=music,num_respondents=1,model=audiolm"),
        ),
        RealScenario(
            name="air_bench_chat_reasoning", aspect="reasoning", family="open_answer",
            title="AIR-Bench chat: open questions about speech, alone or mixed with sound/music",
            group_by=("task",), options={"max_tokens": 200}, smoke_size=40,
            run_entries=("air_bench_chat:subject=mix,num_respondents=1,model=audiolm",
                         "air_bench_chat:subject=speech,num_respondents=1,model=audiolm"),
        ),
    )
    hub = HubSource(
        repo_id="qyang1021/AIR-Bench-Dataset",
        allow_patterns=("Foundation/Foundation_meta.json",
                        *(f"Foundation/{task}_*" for task in FOUNDATION_TASKS),
                        "Chat/*"),
    )
    manual = ("download the Foundation/ and Chat/ folders of "
              "https://huggingface.co/datasets/qyang1021/AIR-Bench-Dataset into DATA_DIR/air_bench/")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        if scenario.name == "air_bench_foundation":
            yield from self._foundation(context.root / "Foundation")
        else:
            yield from self._chat(context.root / "Chat", CHAT_SUBJECTS[scenario.name])

    def _foundation(self, folder: Path) -> Iterator[tuple[str, Row]]:
        meta = need_file(folder / "Foundation_meta.json", "AIR-Bench foundation questions", self)
        for where, item in json_array_items(meta):
            task = field_of(item, "task_name", where)
            if task not in FOUNDATION_TASKS:
                continue
            choices: list[str] = []
            for key in _CHOICE_KEYS:
                value = item.get(key)
                text = "" if value is None else str(value).strip()
                if text and text not in choices:
                    choices.append(text)
            answer = field_of(item, "answer_gt", where)
            if answer not in choices:
                raise DatasetError(f"{where}: field 'answer_gt' {answer!r} is none of "
                                   f"{', '.join(_CHOICE_KEYS)} ({choices})")
            if len(choices) < 2:
                raise DatasetError(f"{where}: fewer than two options in {', '.join(_CHOICE_KEYS)}")
            yield where, {**self._common(folder, item, where), "choices": choices,
                          "answer": answer, "task": FOUNDATION_TASKS[task]}

    def _chat(self, folder: Path, subjects: tuple[str, ...]) -> Iterator[tuple[str, Row]]:
        meta = need_file(folder / "Chat_meta.json", "AIR-Bench chat questions", self)
        for where, item in json_array_items(meta):
            subject = chat_subject(field_of(item, "task_name", where))
            if subject not in subjects:
                continue
            yield where, {**self._common(folder, item, where),
                          "answers": [field_of(item, "answer_gt", where)], "task": subject}

    def _common(self, folder: Path, item: dict[str, Any], where: str) -> Row:
        """id, audio and question, shared by both halves."""
        task = field_of(item, "task_name", where)
        source = field_of(item, "dataset_name", where)
        name = field_of(item, "path", where)
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise DatasetError(f"{where}: field 'path' {name!r} should be a file name inside "
                               f"{task}_{source}/")
        return {"id": f"{task}_{source}-{field_of(item, 'uniq_id', where)}",
                "audio": str(folder / f"{task}_{source}" / relative),
                "question": field_of(item, "question", where)}


def chat_subject(task_name: str) -> str:
    """HELM's subject of a chat task: ``speech_and_*`` is "mix", else the first word."""
    if task_name.startswith("speech_and_"):
        return "mix"
    return task_name.split("_", 1)[0]


DATASET = AirBench()
