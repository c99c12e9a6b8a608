"""The ``ahelm`` command. Running the evaluation is pytest's job; this reads its runs, replays
robustness counterexamples, and lists and fetches the real datasets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


def _formats(text: str) -> list[str]:
    from ahelm.reports.leaderboard import FORMATS

    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(unknown) or '(none)'}; choose from {','.join(FORMATS)}")
    return list(dict.fromkeys(chosen))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ahelm", description="ahelm: reports across runs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    board = commands.add_parser(
        "leaderboard", help="rank models from their run folders by mean win rate",
        description="Rank the models of several run folders by HELM's mean win rate.")
    board.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                       help="a run folder (reports/runs/...) or its summary.json; one per model")
    board.add_argument("--out", type=Path, default=Path("reports/leaderboard"), metavar="DIR",
                       help="where to write leaderboard.* (default: reports/leaderboard)")
    board.add_argument("--format", type=_formats, default=["md", "json", "html"],
                       metavar="md,json,html", help="which files to write (default: all three)")
    perturb = commands.add_parser(
        "perturb", help="write the exact audio of a robustness counterexample (replay)",
        description="Rebuild the perturbed clip a robustness property reported, bit for bit.")
    perturb.add_argument("--scenario", required=True, help="scenario name (folder in the corpus)")
    perturb.add_argument("--instance", required=True, help="instance id in that scenario")
    perturb.add_argument("--chain", required=True, metavar="KIND:SEVERITY,...",
                         help="the perturbation chain, e.g. pink_noise:0.21,low_pass:0.05")
    perturb.add_argument("--seed", required=True, type=int, help="the seed the report gives")
    perturb.add_argument("--out", required=True, type=Path, help="WAV file to write")
    perturb.add_argument("--corpus", type=Path, default=Path("fixtures/corpus"),
                         help="corpus root (default: fixtures/corpus)")
    data = commands.add_parser(
        "data", help="AHELM's real datasets: list them, fetch those on the Hugging Face Hub",
        description="The real datasets --data-dir reads (docs/datasets/).")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    listing = data_commands.add_parser("list", help="every dataset, its folder and scenarios")
    listing.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                         help="also say which datasets are present in DIR "
                              "(default: $AHELM_DATA_DIR if set)")
    fetch = data_commands.add_parser(
        "fetch", help="download a dataset from the Hugging Face Hub into DIR/<its folder>",
        description="Download a dataset's files from the Hugging Face Hub (needs the network and "
                    'pip install "ahelm[datasets]"); prints the plan first.')
    fetch.add_argument("name", help="dataset name (ahelm data list)")
    fetch.add_argument("--to", required=True, type=Path, metavar="DIR",
                       help="the data directory (what --data-dir will point at)")
    fetch.add_argument("--dry-run", action="store_true", help="print the plan, download nothing")
    return parser


def _data(args: argparse.Namespace) -> int:
    from ahelm.datasets import data_dir
    from ahelm.datasets.fetch import FetchError, fetch, listing, plan

    if args.data_command == "list":
        for line in listing(args.data_dir or data_dir(None)):
            print(line)
        return 0
    try:
        chosen = plan(args.name, args.to)
        for line in chosen.lines():
            print(line)
        if args.dry_run:
            print("dry run: nothing downloaded")
            return 0
        print(f"fetched into {fetch(chosen)}")
    except FetchError as exc:
        print(f"ahelm data fetch: {exc}", file=sys.stderr)
        return 2
    return 0


def _perturb(args: argparse.Namespace) -> int:
    from ahelm.core import InstanceError
    from ahelm.robustness.perturbations import Perturbation
    from ahelm.robustness.properties import perturbed
    from ahelm.scenarios import ScenarioError, load_scenario

    try:
        chain = []
        for step in args.chain.split(","):
            kind, _, severity = step.partition(":")
            chain.append(Perturbation(kind.strip(), float(severity)))
        scenario = load_scenario(args.corpus / args.scenario)
        instance = next((i for i in scenario.instances if i.id == args.instance), None)
        if instance is None:
            raise ScenarioError(f"{args.scenario}: no instance {args.instance!r}")
        clip = perturbed(instance, chain, args.seed).audio
        assert clip is not None
        args.out.write_bytes(clip.read_verified())
    except (ValueError, ScenarioError, InstanceError) as exc:
        print(f"ahelm perturb: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {clip.describe()} (identity {clip.identity[:16]})")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from ahelm.reports import leaderboard

    missing = [str(p) for p in args.runs if not (p / "summary.json" if p.is_dir() else p).is_file()]
    if missing:
        print(f"ahelm leaderboard: no summary.json in {', '.join(missing)}", file=sys.stderr)
        return 2
    board = leaderboard.build(args.runs)
    for path in leaderboard.write(board, args.out, args.format):
        print(path)
    for note in board.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "leaderboard":
        return _leaderboard(args)
    if args.command == "perturb":
        return _perturb(args)
    if args.command == "data":
        return _data(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
