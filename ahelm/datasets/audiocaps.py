"""AudioCaps (Kim et al., NAACL 2019): people's captions of 10-second AudioSet clips; AHELM's
audio captioning (perception), on the test split.

AudioCaps publishes captions only (``test.csv``: audiocap_id, youtube_id, start_time, caption;
five captions per clip, one row each); the audio is cut from YouTube by whoever uses it. ahelm
reads either of two audio layouts next to the CSV::

    audiocaps/
      test.csv
      wav_files/<audiocap_id>.wav                 HELM's copy (Hub: Olivia714/audiocaps,
                                                  wav_files.zip unpacked): one file per caption
                                                  row; a clip is read from its smallest id
      audio/<youtube_id>_<start_time>.wav         clips you cut yourself, one per clip
                                                  (.flac also read), e.g. audio/vfY_TJq7n_U_130.wav

``audio/`` is used when it exists, else ``wav_files/``. The rows of one clip (same youtube_id
and start_time) make one instance whose references are all its captions.
"""

from __future__ import annotations

from typing import Iterator

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
    read_csv,
)

QUESTION = "Write a short caption that describes the sounds in this clip."


class AudioCaps(Dataset):
    name = "audiocaps"
    title = "AudioCaps test split"
    folder = "audiocaps"
    homepage = "https://audiocaps.github.io/"
    licence = ("captions: free for academic use only (the authors' terms; code MIT); audio: "
               "YouTube clips of AudioSet, not distributed by AudioCaps")
    scenarios = (
        RealScenario(
            name="audiocaps", aspect="perception", family="open_answer",
            title="AudioCaps: caption a sound clip", options={"max_tokens": 50}, smoke_size=40,
            run_entries=("audiocaps:num_respondents=1,model=audiolm",),
        ),
    )
    hub = HubSource(
        repo_id="Olivia714/audiocaps", allow_patterns=("test.csv", "wav_files.zip"),
        after=("unzip wav_files.zip inside DATA_DIR/audiocaps/ so that the clips are "
               "DATA_DIR/audiocaps/wav_files/<audiocap_id>.wav (rename the unpacked folder if needed)",),
    )
    manual = ("get test.csv from https://github.com/cdjkim/audiocaps (dataset/) and cut each "
              "clip (10 s from start_time) from YouTube into "
              "DATA_DIR/audiocaps/audio/<youtube_id>_<start_time>.wav")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        root = context.root
        table = need_file(root / "test.csv", "the test captions", self)
        if (root / "audio").is_dir():
            by_clip = True
        elif (root / "wav_files").is_dir():
            by_clip = False
        else:
            raise DatasetError(f"{root}: no audio folder: expected wav_files/<audiocap_id>.wav "
                               f"(Olivia714/audiocaps) or audio/<youtube_id>_<start_time>.wav "
                               f"(see {self.doc})")
        clips: dict[str, tuple[str, list[tuple[int, str]]]] = {}
        for where, row in read_csv(table, ("audiocap_id", "caption")):
            caption_id = field_of(row, "audiocap_id", where)
            if not caption_id.isdigit():
                raise DatasetError(f"{where}: field 'audiocap_id' should be a number, "
                                   f"found {caption_id!r}")
            caption = field_of(row, "caption", where)
            if "youtube_id" in row and "start_time" in row:
                start = field_of(row, "start_time", where)
                if not start.isdigit():
                    raise DatasetError(f"{where}: field 'start_time' should be whole seconds, "
                                       f"found {start!r}")
                clip = clip_name(field_of(row, "youtube_id", where), start)
            elif by_clip:
                raise DatasetError(f"{where}: audio/ names clips by youtube_id and start_time, "
                                   f"which {table.name} lacks")
            else:
                clip = caption_id
            clips.setdefault(clip, (where, []))[1].append((int(caption_id), caption))
        for clip in sorted(clips):
            where, captions = clips[clip]
            captions.sort()
            if by_clip:
                audio = audio_file(root / "audio" / clip, (".wav", ".flac"), where)
            else:
                audio = audio_file(root / "wav_files" / str(captions[0][0]), (".wav",), where)
            yield where, {"id": clip, "audio": audio, "question": QUESTION,
                          "answers": [text for _, text in captions]}


def clip_name(youtube_id: str, start_time: int | str) -> str:
    """The file stem ahelm reads a clip from in ``audio/``: ``<youtube_id>_<start_time>``."""
    return f"{youtube_id}_{start_time}"


DATASET = AudioCaps()
