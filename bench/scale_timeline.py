"""pytest plugin for bench/scale.py: when a run's tests started and ended, its results were written, it ended.

Loaded with `-p scale_timeline` (bench/ on PYTHONPATH); writes, from the controller only, to the
file named by $MXSPEC_SCALE_TIMELINE (and does nothing without it) a JSON object: `times`, the
wall-clock times of those moments, and under xdist `split`, the hosts whose scenarios ran on more
than one worker (of `targets`).
"""

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

TIMELINE_ENV = "MXSPEC_SCALE_TIMELINE"


class Timeline:
    def __init__(self, path: str):
        self.path = path
        self.times: dict[str, float] = {"configure": time.time()}
        self.workers: dict[str, set[str]] = {}

    def pytest_runtest_logstart(self) -> None:
        self.times.setdefault("first_test", time.time())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.times["last_report"] = time.time()
        # Which xdist worker ran each host's scenarios: --dist loadgroup should keep a host on one.
        target = dict(report.user_properties).get("mx_target")
        gateway = getattr(getattr(report, "node", None), "gateway", None)
        if report.when == "call" and target and gateway is not None:
            self.workers.setdefault(str(target), set()).add(str(gateway.id))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self) -> Any:
        try:
            return (yield)
        finally:  # every test done; under xdist, every worker gone (their connections closed)
            self.times["loop_end"] = time.time()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.times["results_written"] = time.time()  # after mxspec's collector wrote --mx-results

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        self.times["unconfigure"] = time.time()  # after mxspec closed its own connections
        split = sorted(target for target, workers in self.workers.items() if len(workers) > 1)
        Path(self.path).write_text(json.dumps({"times": self.times, "targets": len(self.workers), "split": split}))


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(TIMELINE_ENV)
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Timeline(path), "mxspec-scale-timeline")
