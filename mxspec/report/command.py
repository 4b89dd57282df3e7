"""`mxspec report`: combine results files of separate runs into the readiness report."""

import datetime
from pathlib import Path

from mxspec.report import readiness, render
from mxspec.report.results import Results, read


def combine(paths: list[str], old: str, new: str, waivers: str | None, out: str) -> int:
    results = Results({}, {}, [])
    for path in paths:
        results.merge(read(Path(path)))
    verdict = readiness.compare(results, old, new, readiness.load_waivers(waivers) if waivers else [],
                                datetime.date.today())
    written = render.write_all(verdict, results, Path(out))
    print(render.to_markdown(verdict))
    print(f"report: {written['html']} ({written['markdown'].name}, {written['json'].name})")
    return 0 if verdict.go else 1
