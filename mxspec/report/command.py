"""`mxspec report`: combine results files of separate runs (or of a run's shards) into the readiness report."""

import datetime
from pathlib import Path

from mxspec.report import readiness, render
from mxspec.report.results import merge, read


def combine(paths: list[str], old: str, new: str, waivers: str | None, out: str) -> int:
    results = merge([(path, read(Path(path))) for path in paths])
    verdict = readiness.compare(results, old, new, readiness.load_waivers(waivers) if waivers else [],
                                datetime.date.today())
    written = render.write_all(verdict, results, Path(out))
    print(render.to_markdown(verdict))
    print(f"report: {written['html']} ({written['markdown'].name}, {written['json'].name})")
    return 0 if verdict.go else 1
