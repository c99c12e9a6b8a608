"""The ``ahelm`` command. Running the evaluation is pytest's job; this only reads its runs."""

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
    return parser


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
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
