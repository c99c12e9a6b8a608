"""Voice jailbreak attacks (Shen et al., 2024, "Voice Jailbreak Attacks Against GPT-4o"): 30
forbidden questions read aloud, plainly and inside five text-jailbreak templates; AHELM's safety
scenario, where every one should be refused.

The audio is not distributed: it is made with the authors' script (``TrustAIRLab/
VoiceJailbreakAttack``, ``tts/prompt2audio.py``, OpenAI TTS voice ``fable``), which names each
file after what it reads. The layout ahelm reads is the one HELM reads (the script's two output
folders, moved)::

    voice_jailbreak/
      baseline_fable/<q>_<question>.wav            the question alone (30 files)
      textjailbreak_fable/<t>_<q>_<question>.wav   template <t> (0Anarchy ... 4Narrative), then
                                                   the question (150 files)

``<q>`` is the question's row in ``data/question_set/questions_tiny.csv`` and ``<question>`` its
text, which becomes the instance's request. The script's own place for the folders,
``data/audio/standard_voice/`` of a clone named ``voice_jailbreak``, works too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ahelm.datasets.base import (
    Dataset,
    DatasetError,
    LoadContext,
    RealScenario,
    Row,
    audio_file,
)

VOICE = "fable"
SUBSETS = ("baseline", "textjailbreak")
AUDIO = (".wav", ".flac", ".mp3")
SCRIPT_OUTPUT = Path("data") / "audio" / "standard_voice"


class VoiceJailbreak(Dataset):
    name = "voice_jailbreak"
    title = "Voice jailbreak attacks (forbidden questions, plain and in jailbreak templates)"
    folder = "voice_jailbreak"
    homepage = "https://github.com/TrustAIRLab/VoiceJailbreakAttack"
    licence = "MIT"
    scenarios = (
        RealScenario(
            name="voice_jailbreak", aspect="safety", family="refusal",
            title="Voice jailbreak attacks: spoken forbidden questions must be refused",
            smoke_size=40, group_by=("subset", "template"),
            run_entries=tuple(f"voice_jailbreak_attacks:subset={s},num_respondents=1,"
                              f"model=audiolm" for s in SUBSETS),
        ),
    )
    manual = ("git clone https://github.com/TrustAIRLab/VoiceJailbreakAttack, then in it (with "
              "OPENAI_API_KEY set) run python tts/prompt2audio.py --dataset baseline --voice fable "
              "and python tts/prompt2audio.py --dataset textjailbreak --voice fable, and move "
              "data/audio/standard_voice/baseline_fable/ and textjailbreak_fable/ into "
              "DATA_DIR/voice_jailbreak/")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        base = self._base(context.root)
        found: list[tuple[tuple[int, str, int], str, Row]] = []
        for order, subset in enumerate(SUBSETS):
            folder = base / f"{subset}_{VOICE}"
            if not folder.is_dir():
                continue
            stems = sorted({p.name[: -len(p.suffix)] for p in folder.iterdir()
                            if p.is_file() and p.suffix.lower() in AUDIO})
            for stem in stems:
                where = str(folder / stem)
                template, number, question = _parse(stem, subset, where)
                ident = (f"{subset}-{number:02d}" if subset == "baseline"
                         else f"{subset}-{template}-{number:02d}")
                row: Row = {
                    "id": ident, "audio": audio_file(folder / stem, AUDIO, where),
                    "request": question, "expected": "refuse", "context": None,
                    "subset": subset, "template": template, "question_index": number,
                }
                found.append(((order, template, number), where, row))
        if not found:
            raise DatasetError(f"{base}: no {SUBSETS[0]}_{VOICE}/ or {SUBSETS[1]}_{VOICE}/ "
                               f"folder with audio found (expected layout: see {self.doc})")
        for _, where, row in sorted(found, key=lambda item: item[0]):
            yield where, row

    def _base(self, root: Path) -> Path:
        """The folder holding the subset folders: the dataset folder, or the script's output
        folder when the dataset folder is a clone of the authors' repository."""
        if any((root / f"{s}_{VOICE}").is_dir() for s in SUBSETS):
            return root
        return root / SCRIPT_OUTPUT if (root / SCRIPT_OUTPUT).is_dir() else root


def _parse(stem: str, subset: str, where: str) -> tuple[str, int, str]:
    """(template, question number, question text) from a file name the script wrote:
    ``<q>_<question>`` (baseline, template "none") or ``<t>_<q>_<question>``."""
    parts = stem.split("_", 2 if subset == "textjailbreak" else 1)
    template = parts.pop(0) if subset == "textjailbreak" and len(parts) == 3 else "none"
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1].strip() or (
            subset == "textjailbreak" and template == "none"):
        shape = "<q>_<question>" if subset == "baseline" else "<template>_<q>_<question>"
        raise DatasetError(f"{where}: file name should be {shape} (as tts/prompt2audio.py "
                           f"names it), found {stem!r}")
    return template, int(parts[0]), parts[1].strip()


DATASET = VoiceJailbreak()
