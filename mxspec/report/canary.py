"""The canary's result beside the readiness report: its verdict, what drives it, a link to its page.

The report reads canary.json (written by `mxspec canary`) as a file, through the canary's own reader of it
(`canary/behaviours.py`, which needs neither hosts nor scipy): it knows results, not hosts.
"""

import html
import os
from pathlib import Path

from mxspec.canary import behaviours
from mxspec.core.errors import MxspecError


def load(path: str, report_dir: Path, estates: tuple[str, str] | None = None) -> dict:
    """What the report shows of a canary result; `link`: its page, relative to the report's folder.
    `estates`: the report's old and new estate, which the canary must have judged."""
    result = behaviours.load(path)
    summary = {"decision": result["decision"], "headline": result["headline"], "old": result["old"],
               "new": result["new"], "reasons": [f"{r['subject']}: {r['text']}" for r in result["reasons"]]}
    if estates and (summary["old"], summary["new"]) != estates:
        raise MxspecError(f"canary result {path} judged {summary['old']} -> {summary['new']}, not {estates[0]} -> {estates[1]}")
    page = Path(path).with_suffix(".html")
    summary["link"] = os.path.relpath(page, report_dir) if page.exists() else ""
    return summary


HOLDS = "the cut-over waits for a canary that is GO"


def markdown(canary: dict) -> list[str]:
    link = f" — [the canary's page]({canary['link']})" if canary["link"] else ""
    holds = f" ({HOLDS})" if canary["decision"] != "GO" else ""
    return ["", f"### Canary ({canary['old']} → {canary['new']}, `mxspec canary`): **{canary['decision']}**{link}", "",
            canary["headline"] + holds, *[f"- {reason}" for reason in canary["reasons"]]]


def html_section(canary: dict) -> str:
    link = f" <a id='canary-link' href='{html.escape(canary['link'])}'>the canary's page</a>" if canary["link"] else ""
    reasons = "".join(f"<li>{html.escape(reason)}</li>" for reason in canary["reasons"])
    return (f"<h2 id='canary'>Canary: {html.escape(canary['old'])} → {html.escape(canary['new'])}</h2>"
            f"<p><span class='verdict-small {html.escape(canary['decision'])}'>{html.escape(canary['decision'])}</span> "
            f"{html.escape(canary['headline'])}{' (' + HOLDS + ')' if canary['decision'] != 'GO' else ''}.{link}</p>"
            + (f"<ul>{reasons}</ul>" if reasons else ""))
