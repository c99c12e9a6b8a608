"""The xdist controller's own plan, made before its workers start.

Under ``-n``, xdist starts the workers once the controller has started, and each must start
Python, load pytest's plugins and collect before it can send a plan: with a remote model the
requests would wait for all of that (about 0.6 s of a contended 2-core machine) although the
controller could know the plan sooner. So when the run has a dispatch service, the controller
collects once, quietly, just before xdist sets up the workers (``pytest_xdist_setupnodes``), and
hands the service the requests of the selected tests, so that they are in flight while the
workers start (the plan interleaves the workers' blocks of tests, which xdist's worksteal
scheduling gives them). The workers still collect, plan and ask as usual: their plans only find the
requests already on their way.

The collection is pytest's own, with every plugin's selection (``-k``, ``-m``, ``--deselect``,
``--lf``, conftest hooks) so that no deselected test is asked for, but nothing of it is
reported: collection progress, errors, deselections and warnings belong to the workers, which
report them as they always do. A collection with an error plans nothing here: the workers will
meet the same error.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

QUIET_HOOKS = frozenset({
    "pytest_collectstart",
    "pytest_collectreport",
    "pytest_itemcollected",
    "pytest_deselected",
    "pytest_collection_finish",
    "pytest_warning_recorded",
})
"""Hooks that report collection; the workers' collection reports it, so here they are not
called. Everything else (making modules and items, parametrising, selecting) runs as usual."""


class _QuietHooks:
    """A hook relay that does not call the reporting hooks of a collection; it notes whether
    any collector failed."""

    def __init__(self, hooks: Any, outcome: dict[str, bool]) -> None:
        self._hooks = hooks
        self._outcome = outcome

    def __getattr__(self, name: str) -> Any:
        if name == "pytest_collectreport":
            return self._collectreport
        if name in QUIET_HOOKS:
            return _not_called
        return getattr(self._hooks, name)

    def _collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._outcome["failed"] = True


def _not_called(**kwargs: Any) -> None:
    return None


def collect_quietly(session: pytest.Session) -> bool:
    """Collect ``session`` (selection hooks included) without reporting anything, then leave it
    as it was; True if every collector succeeded. The plugins' ``pytest_collection_modifyitems``
    see the selected items, as in any collection."""
    config = session.config
    hooks = config.hook
    find_hooks = session.gethookproxy
    outcome = {"failed": False}
    config.hook = _QuietHooks(hooks, outcome)  # type: ignore[assignment]
    quiet: Any = lambda path: _QuietHooks(find_hooks(path), outcome)  # noqa: E731
    session.gethookproxy = quiet  # type: ignore[method-assign]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session.perform_collect()
        return not outcome["failed"]
    except Exception:  # noqa: BLE001 - the workers meet and report the same failure
        return False
    finally:
        config.hook = hooks
        del session.gethookproxy
        session.items = []
        session.testscollected = 0
