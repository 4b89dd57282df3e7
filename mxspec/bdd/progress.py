"""A run's progress over estates: one line per host (or estate) when its last scenario ends.

`[mxspec] 3/8 done  new-router-1: 23 scenarios, 0 failed` stands instead of pytest's letter per
scenario and the test file's name, which, with hosts checked concurrently, would come interleaved
and say nothing of which host they are about. With -v pytest's line per test stays, and these
lines come between.
"""

from collections.abc import Generator
from typing import Any

import pytest

from mxspec.report.collector import scenario_outcome


class Progress:
    """Registered by the plugin on the controller of every run with --hosts (workers hand their reports to it)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.planned: dict[str, int] = {}  # target -> how many scenarios it runs
        self.outcomes: dict[str, list[str]] = {}  # target -> the outcomes of those that ended

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: Any) -> Generator[None, Any, Any]:
        status = yield
        if "mx_target" not in dict(getattr(report, "user_properties", ())):
            return status
        category, _, word = status
        return category, "", word  # no letter: the target's line says how its scenarios went; -v keeps the word

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """How many scenarios each host (or estate) runs, to say when it is done (under pytest-xdist too: the
        controller collects, see the plugin's pytest_collection)."""
        for item in session.items:
            props: dict[str, Any] = dict(item.user_properties)
            target = props.get("mx_target")
            if target is not None:
                self.planned[target] = self.planned.get(target, 0) + 1
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.planned and reporter is not None and self.config.get_verbosity() <= 0:
            reporter.showfspath = False  # else each target's line would follow the test file's name

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props: dict[str, Any] = dict(report.user_properties)
        target, outcome = props.get("mx_target"), scenario_outcome(report)
        if target is None or outcome is None:
            return
        outcomes = self.outcomes.setdefault(target, [])
        outcomes.append(outcome)
        if len(outcomes) == self.planned.get(target):
            self._done(target, outcomes)

    def _done(self, target: str, outcomes: list[str]) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        done = sum(len(self.outcomes.get(name, [])) == count for name, count in self.planned.items())
        if done == 1 and self.config.get_verbosity() <= 0 and not self.config.pluginmanager.has_plugin("dsession"):
            reporter.write_line("")  # after "collected N items", as pytest leaves it (pytest-xdist leaves its own)
        skipped = outcomes.count("skipped")
        reporter.write_line(f"[mxspec] {done}/{len(self.planned)} done  {target}: {len(outcomes)} scenarios, "
                            f"{outcomes.count('failed')} failed" + (f", {skipped} skipped" if skipped else ""))
