"""What the canary's Gherkin behaviours check in a canary result (canary.json, from `mxspec canary`).

Each function returns the problems it finds, in words for the operator; none means the behaviour
holds. They read the result file, never a host: the canary's window is over when they run.
"""

import json
from pathlib import Path

from mxspec.core.errors import MxspecError

FORMAT = "mxspec-canary/1"  # what a canary.json says it is (render writes it; the steps and the report check it)
GREETING_POINTS = 0.05  # how much less often than the old estate's the new estate's clients may get past the greeting


def load(path: str) -> dict:
    try:
        result = json.loads(Path(path).read_text())
    except OSError as error:
        raise MxspecError(f"canary result {path}: cannot read it ({error.strerror})") from None
    except ValueError as error:
        raise MxspecError(f"canary result {path}: not a canary result (not JSON: {error})") from None
    if not isinstance(result, dict) or result.get("format") != FORMAT or "path" not in result:
        raise MxspecError(f"canary result {path}: not a canary result of this mxspec ({FORMAT}; write one with "
                          "`mxspec canary ... --out DIR`: DIR/canary.json)")
    return result


def share_problems(result: dict) -> list[str]:
    split = result.get("split")
    if not split:
        return ["the canary was judged without its configured share: give `mxspec canary --share P`"]
    if split["status"] == "within":
        return []
    if split["observed"] is None:
        return [f"not enough traffic to tell: {split['connections']} connections in the window"]
    low, high = split["ci"]
    return [f"the new estate took {split['observed']:.1%} of {split['connections']} connections (99.9% interval "
            f"{low:.1%} to {high:.1%}), but the split sends {split['configured']:.0%}"]


def source_address_problems(result: dict) -> list[str]:
    path = result["path"]
    if not path["new_connections"]:
        return ["the new estate logged no connection in the canary's window: nothing shows whose address it saw"]
    if path["new_from_old_mx_address"]:
        return [f"{path['new_from_old_mx_address']} of the new estate's {path['new_connections']} connections came "
                "from the old MX's own address: the split rewrites the client's address (SNAT), so the new MX "
                "judges every client as the old MX"]
    return []


def greeting_problems(result: dict) -> list[str]:
    path = result["path"]
    if not path["old_connections"]:
        return ["the old estate logged no connection in the canary's window: no traffic to compare with"]
    if not path["new_connections"]:
        return ["the new estate logged no connection in the canary's window: the split sends it none, or its "
                "replies find no way back through the old MX (the clients never see its greeting)"]
    new = path["new_past_greeting"] / path["new_connections"]
    old = path["old_past_greeting"] / path["old_connections"]
    if new >= old - GREETING_POINTS:
        return []
    return [f"only {new:.1%} of the new estate's {path['new_connections']} connections got past the greeting "
            f"({old:.1%} on the old estate): replies that do not find their way back through the old MX "
            "leave clients waiting at the connection's start"]


def deviation_problems(result: dict) -> list[str]:
    if result["decision"] == "GO":
        return []
    return [f"canary verdict {result['decision']}"] + [
        f"{reason['subject']}: {reason['text']}" + "".join(f"\n      {line}" for line in reason.get("evidence", [])[:3])
        for reason in result.get("reasons", [])]
