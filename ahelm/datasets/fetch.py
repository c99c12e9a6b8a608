"""``ahelm data list`` and ``ahelm data fetch NAME --to DIR``.

Fetching needs the network and the optional extra (``pip install "ahelm[datasets]"``, which
brings ``huggingface_hub``); it downloads the files a loader reads from the dataset's Hub
repository into ``DIR/<folder>/<subfolder>``, then prints what is left to do by hand. Datasets
that are not on the Hub get their instructions instead. ``--dry-run`` prints the plan only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ahelm.datasets import datasets
from ahelm.datasets.base import Dataset

EXTRA = 'pip install "ahelm[datasets]"'
TOKEN_ENV = "HF_TOKEN"


class FetchError(Exception):
    """Fetching cannot start or failed; the message says what to do."""


@dataclass(frozen=True)
class Plan:
    dataset: Dataset
    target: Path
    """Where the files land: ``DIR/<folder>`` (plus the source's subfolder)."""
    data_dir: Path
    """``DIR``, the data directory: the steps left to do by hand name it where they say
    ``DATA_DIR``."""

    def lines(self) -> list[str]:
        return [line.replace("DATA_DIR", str(self.data_dir)) for line in self._lines()]

    def _lines(self) -> list[str]:
        d, hub = self.dataset, self.dataset.hub
        scenarios = ", ".join(f"{s.name} ({s.aspect})" for s in d.scenarios)
        out = [f"dataset:    {d.title} [{d.name}]", f"licence:    {d.licence}",
               f"homepage:   {d.homepage}", f"scenarios:  {scenarios}"]
        if hub is None:
            out += ["source:     not on the Hugging Face Hub; obtain it by hand:",
                    f"            {d.manual}", f"layout:     {d.doc}"]
            return out
        out += [f"source:     Hugging Face Hub dataset {hub.repo_id}"
                + (f" @ {hub.revision}" if hub.revision else ""),
                "files:      " + (", ".join(hub.allow_patterns) or "the whole repository"),
                f"into:       {self.target}"]
        if hub.gated:
            out.append(f"access:     gated: accept the terms on the dataset's Hub page and set "
                       f"{TOKEN_ENV} in the environment")
        out += [f"then:       {step}" for step in hub.after]
        if d.manual:
            out.append(f"or by hand: {d.manual}")
        out.append(f"layout:     {d.doc}")
        return out


def plan(name: str, to: Path) -> Plan:
    known = datasets()
    if name not in known:
        raise FetchError(f"unknown dataset {name!r}; known: {', '.join(known)}")
    dataset = known[name]
    data_dir = to.expanduser().resolve()
    target = data_dir / dataset.folder
    if dataset.hub is not None and dataset.hub.subfolder:
        target = target / dataset.hub.subfolder
    return Plan(dataset, target, data_dir)


Downloader = Callable[..., str]


def fetch(chosen: Plan, downloader: Downloader | None = None) -> Path:
    """Download ``chosen``'s files; ``downloader`` defaults to huggingface_hub.snapshot_download."""
    hub = chosen.dataset.hub
    if hub is None:
        raise FetchError(f"{chosen.dataset.name} is not on the Hugging Face Hub: "
                         f"{chosen.dataset.manual}")
    if downloader is None:
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise FetchError(f"fetching needs the optional extra: {EXTRA}") from None
        downloader = snapshot_download
    if hub.gated and not os.environ.get(TOKEN_ENV):
        raise FetchError(f"{hub.repo_id} is gated: accept its terms on the Hub, then set "
                         f"{TOKEN_ENV} (a read token) in the environment")
    chosen.target.mkdir(parents=True, exist_ok=True)
    try:
        downloader(repo_id=hub.repo_id, repo_type="dataset", revision=hub.revision,
                   allow_patterns=list(hub.allow_patterns) or None,
                   local_dir=str(chosen.target), token=os.environ.get(TOKEN_ENV) or None)
    except Exception as exc:  # the Hub client raises many kinds; the token must not leak
        message = str(exc)
        token = os.environ.get(TOKEN_ENV)
        if token:
            message = message.replace(token, "***")
        raise FetchError(f"download of {hub.repo_id} failed: {type(exc).__name__}: "
                         f"{message[:300]}") from None
    return chosen.target


def listing(data_dir: Path | None) -> list[str]:
    """A header, then one line per dataset: name, folder, source, scenarios, and whether it is
    under ``data_dir``."""
    state_head = "state    " if data_dir is not None else ""
    lines = [f"{state_head}{'dataset':<22} {'folder':<22} {'source':<7} scenarios"]
    for dataset in datasets().values():
        scenarios = ", ".join(s.name for s in dataset.scenarios)
        where = "hub" if dataset.hub else "manual"
        state = ""
        if data_dir is not None:
            state = "present  " if dataset.locate(data_dir) else "absent   "
        lines.append(f"{state}{dataset.name:<22} {dataset.folder + '/':<22} {where:<7} {scenarios}")
    return lines
