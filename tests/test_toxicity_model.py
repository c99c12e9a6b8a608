"""The numpy toxicity model against alt-profanity-check's own sklearn pipeline, and the disk cache
of the arrays taken out of its pickles."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ahelm.core import Record
from ahelm.scoring import toxicity
from ahelm.scoring.toxicity import (
    CACHE_FORMAT,
    THRESHOLD,
    LinearToxicityModel,
    cache_dir,
    cache_name,
    extract,
    model_files,
    toxicity_probabilities,
    with_output_toxicity,
)

REPO = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-9
Reference = Callable[[Sequence[str]], list[float]]

TEXTS = [
    # clean
    "The weather is lovely today.",
    "Thank you so much for your help with the report.",
    "The capital of France is Paris.",
    "Please send me the minutes of yesterday's meeting.",
    "Water boils at 100 degrees Celsius at sea level.",
    "She plays the violin in the city orchestra.",
    "Could you repeat the question, please?",
    "The speaker sounds calm and a little tired.",
    "I'm sorry, but I can't help with that request.",
    "Answer: B",
    "Yes",
    "No",
    "Same speaker",
    # offensive
    "You are a fucking idiot.",
    "Shut up, you stupid moron!",
    "What a pathetic loser you are.",
    "This is complete bullshit.",
    "Go to hell, you worthless piece of crap.",
    "You dumb ass, read the question.",
    "damn it",
    "Screw you and your stupid ideas.",
    "He's an arrogant jerk and a total asshole.",
    "fuck fuck fuck",
    "Nobody cares what you think, idiot.",
    "You suck at this.",
    "idiot idiot idiot stupid",
    "stupid " * 50,
    # case and punctuation
    "YOU ARE AN IDIOT",
    "sTuPiD qUeStIoN",
    "Thank YOU very MUCH",
    "idiot!!!???",
    "f*** off",
    "s-h-i-t",
    "stupid,idiot;moron.",
    "(shut up)",
    "'hello' \"world\"",
    "...",
    "@#$%^&*",
    "don't you dare, you're an idiot",
    "line one\nline two\tidiot",
    # digits and underscores
    "123 456 7890",
    "idiot123",
    "4ever 2gether",
    "Call 555-0100 now",
    "route66 a1 b2",
    "articles_for_deletion talk contributions",
    "__init__ snake_case_word",
    # unicode
    "Café crème brûlée au déjeuner",
    "naïve résumé façade",
    "日本語のテキストです",
    "这是一个测试",
    "😀😀😀",
    "you idiot 😡",
    "Ünïcödé wörds Straße",
    "İSTANBUL ΣΊΣΥΦΟΣ",
    "ﬁne ﬂower",
    "zero\u200bwidth\u200bidiot",
    # empty, blank, one-letter words
    "",
    " ",
    "\n\t ",
    "\u3000",
    "a b c d e f",
    "I x y z",
    # non-English
    "Du bist der nutzloseste Mensch, mit dem ich je gearbeitet habe.",
    "Eres un idiota y un estúpido.",
    "Je ne sais pas ce que tu veux dire.",
    "Ты идиот",
    "أنت غبي",
    "तुम मूर्ख हो",
    "Sei un cretino.",
    # only unknown words, only stop words
    "zxqv plorf wubbalub",
    "qwertyuiop asdfghjkl",
    "the and of to in it is was",
    # very long
    " ".join(["The committee reviewed the proposal carefully and agreed to meet again."] * 400)
    + " You idiot.",
    "bloody " * 3000,
]


@pytest.fixture(scope="module")
def installed() -> Any:
    """alt-profanity-check's module, which holds the unpickled sklearn objects."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from profanity_check import profanity_check
    return profanity_check


@pytest.fixture(scope="module")
def reference(installed: Any) -> Reference:
    """The package's own probabilities (sklearn's vectorizer and calibrated classifiers)."""
    return lambda texts: [float(p) for p in installed.predict_prob(list(texts))]


@pytest.fixture(scope="module")
def extracted(installed: Any) -> LinearToxicityModel:
    return extract(installed.vectorizer, installed.model)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A private cache folder, with nothing loaded yet in this process."""
    monkeypatch.setenv("AHELM_CACHE_DIR", str(tmp_path))
    toxicity._reset()
    yield tmp_path / "toxicity"
    toxicity._reset()


def assert_same(ours: Sequence[float], theirs: Sequence[float]) -> None:
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)


def corpus_texts() -> list[str]:
    """Every text-like field of the fixture corpus manifests (questions, transcripts, ...)."""
    texts: list[str] = []
    for manifest in sorted((REPO / "fixtures" / "corpus").glob("*/manifest.jsonl")):
        for line in manifest.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for name in ("question", "transcript", "text", "text_a", "text_b", "request",
                         "context", "spoken_text", "source_text", "reference", "setting"):
                if isinstance(row.get(name), str):
                    texts.append(row[name])
            for name in ("answers", "choices"):
                texts.extend(item for item in row.get(name) or () if isinstance(item, str))
    return texts


def vocabulary_texts(model: LinearToxicityModel, count: int) -> list[str]:
    """Random texts built from vocabulary terms (with repeats), stop words and unknown words,
    in random case, with assorted separators; and one text holding every term once."""
    rng = np.random.default_rng(20240611)
    terms = sorted(model.vocabulary)
    extras = ["the", "and", "of", "zzyzx", "qqq", "a", "7", "é", "😀"]
    separators = [" ", ", ", "! ", "\n", "...", " - ", "\t"]
    texts = [" ".join(terms)]
    for _ in range(count):
        size = int(rng.integers(1, 40))
        words = [terms[int(i)] if known else extras[int(i) % len(extras)]
                 for i, known in zip(rng.integers(0, len(terms), size), rng.random(size) < 0.8,
                                     strict=True)]
        words = [w.upper() if up else w for w, up in zip(words, rng.random(size) < 0.1,
                                                          strict=True)]
        joins = [separators[int(i)] for i in rng.integers(0, len(separators), size)]
        texts.append("".join(w + join for w, join in zip(words, joins, strict=True)))
    return texts


# -- equality with the sklearn pipeline ------------------------------------------------------------


def test_hand_written_texts_match_the_package(extracted: LinearToxicityModel,
                                              reference: Reference) -> None:
    assert len(TEXTS) >= 60
    assert_same(extracted.probabilities(TEXTS), reference(TEXTS))


def test_each_text_alone_matches_the_package(extracted: LinearToxicityModel,
                                             reference: Reference) -> None:
    for text in TEXTS[:40]:
        assert_same(extracted.probabilities([text]), reference([text]))


def test_random_vocabulary_texts_match_the_package(extracted: LinearToxicityModel,
                                                   reference: Reference) -> None:
    texts = vocabulary_texts(extracted, 300)
    assert_same(extracted.probabilities(texts), reference(texts))


def test_fixture_corpus_texts_match_the_package(extracted: LinearToxicityModel,
                                                reference: Reference) -> None:
    texts = corpus_texts()
    assert len(texts) > 500
    assert_same(extracted.probabilities(texts), reference(texts))


def test_texts_without_a_known_word_get_the_intercepts_probability(
        extracted: LinearToxicityModel) -> None:
    # A zero feature vector leaves each classifier's score at its intercept.
    expected = float(np.mean(1.0 / (1.0 + np.exp(extracted.slope * extracted.intercept
                                                   + extracted.offset))))
    for text in ["", "zxqv plorf", "the and of", "日本語"]:
        assert extracted.probabilities([text]) == [pytest.approx(expected, abs=1e-15)]


def test_the_model_is_what_the_package_ships(extracted: LinearToxicityModel,
                                             installed: Any) -> None:
    assert extracted.size == len(installed.vectorizer.vocabulary_) == 15442
    assert extracted.coef.shape == (len(installed.model.calibrated_classifiers_), 15442)
    assert extracted.token_pattern.pattern == installed.vectorizer.token_pattern


def test_extract_refuses_settings_it_does_not_reproduce(installed: Any) -> None:
    from sklearn.base import clone

    bigrams = clone(installed.vectorizer).set_params(ngram_range=(1, 2))
    with pytest.raises(ValueError, match="ngram_range"):
        extract(bigrams, installed.model)


def test_a_hand_made_model_follows_the_formula() -> None:
    model = LinearToxicityModel(
        vocabulary={"idiot": 1, "nice": 2}, idf=np.array([1.0, 2.0, 3.0]),
        coef=np.array([[0.0, 1.5, -1.0], [0.0, 0.5, 0.25]]), intercept=np.array([-0.5, 0.1]),
        slope=np.array([-2.0, -3.0]), offset=np.array([0.5, 1.0]),
        token_pattern=re.compile(r"(?u)\b\w\w+\b"))
    # "Idiot idiot nice": counts (0, 2, 1) → tf-idf (0, 4, 3) → unit length (0, 0.8, 0.6).
    scores = [0.8 * 1.5 - 0.6 * 1.0 - 0.5, 0.8 * 0.5 + 0.6 * 0.25 + 0.1]
    expected = sum(1 / (1 + math.exp(a * s + b))
                   for a, s, b in zip((-2.0, -3.0), scores, (0.5, 1.0), strict=True)) / 2
    assert model.probabilities(["Idiot idiot nice", "x"])[0] == pytest.approx(expected, abs=1e-15)
    arrays = model.to_arrays()
    assert arrays["vocabulary"].tolist() == ["", "idiot", "nice"]
    assert LinearToxicityModel.from_arrays(arrays).vocabulary == {"idiot": 1, "nice": 2}


def test_inconsistent_arrays_are_refused(extracted: LinearToxicityModel) -> None:
    arrays = extracted.to_arrays()
    with pytest.raises(ValueError):
        LinearToxicityModel.from_arrays({**arrays, "coef": arrays["coef"][:, :-1]})
    with pytest.raises(ValueError):
        LinearToxicityModel.from_arrays({**arrays, "slope": arrays["slope"][:-1]})
    with pytest.raises(ValueError):
        LinearToxicityModel.from_arrays({**arrays, "idf": arrays["idf"].astype(np.float32)})


# -- the public functions keep their contract -----------------------------------------------------


def test_blank_texts_score_zero_and_order_is_kept(cache: Path, reference: Reference) -> None:
    texts = ["You stupid idiot.", "", "The sky is blue.", "   \n", "fuck off", "\u3000"]
    probabilities = toxicity_probabilities(texts)
    assert [probabilities[i] for i in (1, 3, 5)] == [0.0, 0.0, 0.0]
    kept = [0, 2, 4]
    assert_same([probabilities[i] for i in kept], reference([texts[i] for i in kept]))
    assert toxicity_probabilities(texts[::-1]) == probabilities[::-1]
    assert toxicity_probabilities([]) == []
    assert all(isinstance(p, float) for p in probabilities)


def _record(instance_id: str, output: str | None, status: str = "pass",
            scores: dict[str, float] | None = None) -> Record:
    return Record(instance_id=instance_id, scenario="s", aspect="a", family="f", status=status,
                  prompt="p", references=(), output=output, scores=scores or {}, groups={})


def test_with_output_toxicity_flags_answers_only(cache: Path) -> None:
    rude = _record("r", "Shut up, you stupid fucking idiot.")
    polite = _record("p", "The answer is B.", scores={"correct": 1.0})
    blank = _record("b", "  ")
    failed = _record("e", None, status="error")
    silent = _record("n", None)
    known = _record("k", "whatever", scores={"output_toxic": 1.0})
    out = with_output_toxicity([rude, polite, blank, failed, silent, known])
    assert [r.scores.get("output_toxic") for r in out] == [1.0, 0.0, 0.0, None, None, 1.0]
    assert out[1].scores["correct"] == 1.0
    assert out[3] is failed and out[4] is silent and out[5] is known
    assert toxicity.output_toxicity(rude.output or "") >= THRESHOLD


# -- the disk cache --------------------------------------------------------------------------------


def _cache_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


_CHILD = """
import json, sys
from ahelm.scoring.toxicity import load_classifier, toxicity_probabilities
load_classifier()
texts = json.load(sys.stdin)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "joblib"))
print(json.dumps({"sklearn": "sklearn" in sys.modules, "loaded": loaded,
                  "probabilities": toxicity_probabilities(texts)}))
"""


def test_first_load_writes_one_file_that_a_fresh_process_reads_without_sklearn(
        cache: Path, reference: Reference) -> None:
    toxicity.load_classifier()
    files = _cache_files(cache)
    assert len(files) == 1 and files[0].suffix == ".npz"
    assert files[0].name == cache_name(model_files())
    written = files[0].stat().st_mtime_ns, files[0].read_bytes()

    child = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(TEXTS), cwd=REPO,
                           env={**os.environ, "AHELM_CACHE_DIR": str(cache.parent)},
                           capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(child.stdout)
    assert result["sklearn"] is False and result["loaded"] == []
    expected = [p if text.strip() else 0.0 for p, text in zip(reference(TEXTS), TEXTS,
                                                              strict=True)]
    assert_same(result["probabilities"], expected)
    assert _cache_files(cache) == files
    assert (files[0].stat().st_mtime_ns, files[0].read_bytes()) == written  # read, not rewritten


def _damage_garbage(path: Path) -> None:
    path.write_bytes(b"\x00not a zip archive\xff" * 64)


def _damage_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage_missing_arrays(path: Path) -> None:
    with path.open("wb") as stream:
        np.savez(stream, idf=np.ones(3))


def _damage_wrong_shapes(path: Path) -> None:
    with np.load(path, allow_pickle=False) as arrays:
        kept = {name: arrays[name] for name in arrays.files}
    with path.open("wb") as stream:
        np.savez(stream, **{**kept, "coef": kept["coef"][:, :10]})


def _damage_pickled(path: Path) -> None:
    with np.load(path, allow_pickle=False) as arrays:
        kept = {name: arrays[name] for name in arrays.files}
    with path.open("wb") as stream:
        np.savez(stream, **{**kept, "vocabulary": kept["vocabulary"].astype(object)})


@pytest.mark.parametrize("damage", [_damage_garbage, _damage_truncated, _damage_missing_arrays,
                                    _damage_wrong_shapes, _damage_pickled])
def test_a_damaged_cache_file_is_replaced(cache: Path, reference: Reference,
                                          damage: Callable[[Path], None]) -> None:
    toxicity.load_classifier()
    (path,) = _cache_files(cache)
    damage(path)
    toxicity._reset()
    assert_same(toxicity_probabilities(TEXTS[:30]), reference(TEXTS[:30]))
    assert _cache_files(cache) == [path]  # rewritten in place, no temporary left behind
    with np.load(path, allow_pickle=False) as arrays:
        repaired = LinearToxicityModel.from_arrays({name: arrays[name] for name in arrays.files})
    assert_same(repaired.probabilities(TEXTS), reference(TEXTS))


def test_an_unwritable_cache_folder_still_scores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 reference: Reference) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AHELM_CACHE_DIR", str(blocker / "cache"))
    toxicity._reset()
    try:
        assert_same(toxicity_probabilities(TEXTS[:30]), reference(TEXTS[:30]))
    finally:
        toxicity._reset()
    assert blocker.read_text() == "not a folder"
    assert sorted(tmp_path.iterdir()) == [blocker]


def test_threads_loading_at_once_share_one_model(cache: Path) -> None:
    loaded: list[LinearToxicityModel] = []

    def load() -> None:
        loaded.append(toxicity._classifier())

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 4 and all(model is loaded[0] for model in loaded)
    assert len(_cache_files(cache)) == 1


def test_cache_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("AHELM_CACHE_DIR", str(tmp_path / "ahelm-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "ahelm-cache" / "toxicity"
    monkeypatch.delenv("AHELM_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "ahelm" / "toxicity"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "ahelm" / "toxicity"


def test_cache_name_tracks_version_format_and_bytes(tmp_path: Path) -> None:
    from importlib.metadata import version

    files = model_files()
    name = cache_name(files)
    assert f"-{version('alt-profanity-check')}-" in name and name.endswith(f"-f{CACHE_FORMAT}.npz")
    copies = [Path(shutil.copy(path, tmp_path / path.name)) for path in files]
    assert cache_name(copies) == name
    content = bytearray(copies[1].read_bytes())
    content[-1] ^= 1
    copies[1].write_bytes(bytes(content))
    assert cache_name(copies) != name
