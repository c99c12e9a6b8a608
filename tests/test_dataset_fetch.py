"""``ahelm data list`` and ``ahelm data fetch``: the plan, the dry run, and the failures that
need no network (the download itself needs the Hub, so it is driven by a local downloader)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ahelm.cli import main
from ahelm.datasets import datasets, real_scenarios
from ahelm.datasets.fetch import FetchError, fetch, plan

ASPECTS_WITH_REAL_DATA = {s.aspect for _, s in real_scenarios().values()}


def test_every_dataset_has_a_plan_a_licence_and_its_docs(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    for name, dataset in datasets().items():
        lines = plan(name, tmp_path).lines()
        text = "\n".join(lines)
        assert dataset.licence and dataset.homepage.startswith("http"), name
        assert (dataset.hub is not None) or dataset.manual, f"{name}: no way to obtain it"
        assert f"[{name}]" in lines[0] and f"licence:    {dataset.licence}" in text
        if dataset.hub is not None:
            assert f"Hugging Face Hub dataset {dataset.hub.repo_id}" in text
            assert f"into:       {tmp_path.resolve() / dataset.folder}" in text
        assert (repo / dataset.doc).is_file(), f"{name}: {dataset.doc} is missing"
        for scenario in dataset.scenarios:
            assert scenario.run_entries, f"{scenario.name}: which AHELM run entries?"


def test_scenario_names_are_unique_and_do_not_shadow_the_corpus() -> None:
    corpus = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
    names = [s.name for d in datasets().values() for s in d.scenarios]
    assert len(names) == len(set(names)) == len(real_scenarios())
    assert not [n for n in names if (corpus / n).exists()]


def test_dry_run_prints_the_plan_and_downloads_nothing(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "librispeech", "--to", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Hugging Face Hub dataset openslr/librispeech_asr" in out
    assert "files:      clean/test/*" in out
    assert f"into:       {tmp_path.resolve() / 'LibriSpeech' / 'hf'}" in out
    assert out.rstrip().endswith("dry run: nothing downloaded")
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset_and_missing_extra_are_clear_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "librispeach", "--to", str(tmp_path)]) == 2
    assert "unknown dataset 'librispeach'; known: " in capsys.readouterr().err
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        assert main(["data", "fetch", "librispeech", "--to", str(tmp_path)]) == 2
        assert 'needs the optional extra: pip install "ahelm[datasets]"' in capsys.readouterr().err
        assert not (tmp_path / "LibriSpeech").exists()


def test_fetch_downloads_what_the_plan_says(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def downloader(**kwargs: Any) -> str:
        calls.append(kwargs)
        Path(kwargs["local_dir"], "test-00000-of-00001.parquet").write_bytes(b"PAR1")
        return str(kwargs["local_dir"])

    chosen = plan("librispeech", tmp_path)
    target = fetch(chosen, downloader)
    assert target == tmp_path.resolve() / "LibriSpeech" / "hf"
    assert (target / "test-00000-of-00001.parquet").is_file()
    assert calls == [{"repo_id": "openslr/librispeech_asr", "repo_type": "dataset",
                      "revision": None, "allow_patterns": ["clean/test/*"],
                      "local_dir": str(target), "token": None}]


def test_gated_needs_a_token_and_a_failure_never_shows_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = plan("librispeech", tmp_path)
    assert chosen.dataset.hub is not None
    gated = dataclasses.replace(chosen, dataset=_with_hub(chosen.dataset, gated=True))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(FetchError, match="is gated: accept its terms.*set HF_TOKEN"):
        fetch(gated, lambda **_: "")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")

    def refusing(**kwargs: Any) -> str:
        raise PermissionError(f"401 for token {kwargs['token']}")

    with pytest.raises(FetchError) as caught:
        fetch(gated, refusing)
    assert "hf_secret_value_123" not in str(caught.value)
    assert "401 for token ***" in str(caught.value)


def test_list_says_what_is_present(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "LibriSpeech").mkdir()
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["state", "dataset", "folder", "source", "scenarios"]
    assert len(lines) == len(datasets())
    libri = next(line for line in lines if " librispeech " in f" {line} ")
    assert libri.startswith("present") and "librispeech_asr, librispeech_fairness" in libri
    assert all(line.startswith("absent") for line in lines if line is not libri)


def test_the_plan_names_the_data_directory_in_the_steps_left_by_hand(tmp_path: Path) -> None:
    for name in datasets():
        text = "\n".join(plan(name, tmp_path / "data").lines())
        assert "DATA_DIR" not in text and " DIR/" not in text, name
    meld = "\n".join(plan("meld", tmp_path / "data").lines())
    assert f"tar -xzf {tmp_path / 'data'}/MELD.Raw/archive/audios_test.tgz" in meld


def _with_hub(dataset: Any, **changes: Any) -> Any:
    class Changed(type(dataset)):  # type: ignore[misc]
        hub = dataclasses.replace(dataset.hub, **changes)

    return Changed()


def test_the_datasets_index_lists_every_dataset_and_scenario() -> None:
    index = (Path(__file__).resolve().parents[1] / "docs" / "datasets" / "README.md").read_text()
    for name, dataset in datasets().items():
        assert f"]({name}.md)" in index, name
        assert f"`{dataset.folder}/`" in index, name
        for scenario in dataset.scenarios:
            assert f"`{scenario.name}`" in index, scenario.name


def test_every_real_scenario_is_in_a_suite_and_has_gates() -> None:
    import re
    import tomllib

    repo = Path(__file__).resolve().parents[1]
    suites = {p.stem.removeprefix("test_"): p.read_text() for p in (repo / "suites").glob("test_*.py")}
    named = {m: set(re.findall(r'@pytest\.mark\.scenario\("([^"]+)"\)', text))
             for m, text in suites.items()}
    gates = tomllib.loads((repo / "suites" / "gates.toml").read_text())
    aspect_module = {"perception": "audio_perception"}
    for name, (_, scenario) in real_scenarios().items():
        module = aspect_module.get(scenario.aspect, scenario.aspect)
        assert name in named[module], f"{name}: no test in suites/test_{module}.py"
        assert name in gates, f"{name}: no [{name}] in suites/gates.toml"
