"""What is configured differently (`mxspec diff --json`) beside the readiness report.

The report knows results, not hosts: the differential reaches it as the JSON `mxspec diff` wrote.
Beside each failing behaviour it lists the differences that plausibly explain it, by a simple and
said rule: the words of the behaviour's scenario name a topic (`TOPICS`; not the feature's name,
which every scenario of a feature shares), and a difference of a host it failed on belongs to that
topic. A plausible explanation, not a diagnosis: the
report says which topic matched.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.report.readiness import Item


@dataclass(frozen=True)
class Topic:
    name: str  # said beside each difference it matched
    words: re.Pattern[str]  # in a behaviour's scenario
    subjects: re.Pattern[str]  # a difference's kind and subject, as "kind subject"


def _words(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(words) + r")", re.IGNORECASE)


TOPICS = (
    Topic("routing", _words(r"rout(e|es|ed|ing)\b", "transport", "next hop", "handed", "forward", "reach", "mailstore"),
          re.compile(r"(map|parameter) (transport_maps|relay_transport|relayhost|default_transport|relay_domains|"
                     r"smtp_fallback_relay|fallback_relay|mydestination|virtual_\w+|sender_dependent_\w+)\b")),
    Topic("lookup tables", _words("lookup", "table", "map"), re.compile(r"map ")),
    Topic("milters and filters", _words("milter", "stamp", "header", "virus", "spam", "dkim", "sign", "scan", "filter"),
          re.compile(r"milter |socket |package (opendkim|rspamd|clamav|spamass|spamassassin|python3-milter)|"
                     r"parameter (milter_\w+|content_filter|\w*header_checks)")),
    Topic("size limits", _words("size", "oversize", "large"),
          re.compile(r"parameter (message_size_limit|mailbox_size_limit|virtual_mailbox_limit)\b")),
    Topic("TLS", _words("tls", "starttls", "certificate", "encrypt", "cipher"),
          re.compile(r"(parameter|service) \S*tls")),
    Topic("who may relay, which recipients are accepted",
          _words("relay", "recipient", "unknown user", "accept", "authoris", "authoriz", "spoof"),
          re.compile(r"(map|parameter) (\w*_restrictions|relay_recipient_maps|local_recipient_maps|mynetworks\w*|"
                     r"relay_domains|smtpd_reject_unlisted_\w+|\w*recipient\w*)\b")),
    Topic("submission", _words("submission", r"auth\b", "authenticat", "sasl", "password", "587"),
          re.compile(r"service submission|parameter \S*sasl|socket \S+:(587|465)$")),
    Topic("services, sockets and packages", _words("listen", "port", "runs", "service", "socket", "banner", "greet",
                                                   "install", "software", "package", "start"),
          re.compile(r"(socket|package|service) |parameter (smtpd_banner|inet_\w+)")),
)
BLOCKING_FAILURES = ("regression", "broken in both")


def load(path: str, old: str, new: str) -> dict:
    """The differential `mxspec diff --json` wrote, for the estates the report compares."""
    try:
        diff = json.loads(Path(path).read_text())
    except OSError as error:
        raise MxspecError(f"{path}: cannot read the differential: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise MxspecError(f"{path}:{error.lineno}: not JSON ({error.msg}): give the file `mxspec diff --json` wrote") from None
    if not isinstance(diff, dict) or not isinstance(diff.get("pairs"), list):
        raise MxspecError(f"{path}: not a differential (no 'pairs'): give the file `mxspec diff --json` wrote")
    if (diff.get("old"), diff.get("new")) != (old, new):
        raise MxspecError(f"{path}: compares {diff.get('old')} -> {diff.get('new')}, the report {old} -> {new}")
    return diff


def unexpected(pair: dict) -> list[dict]:
    return [d for d in pair["differences"] if not d.get("expected")]


def explaining(item: Item, diff: dict) -> list[tuple[str, dict, dict]]:
    """(topic, pair, difference) for each difference that plausibly explains a failing behaviour:
    of its role, on a new host it failed on, in a topic its words name."""
    if item.status not in BLOCKING_FAILURES:
        return []
    topics = [topic for topic in TOPICS if topic.words.search(item.scenario)]
    failing = {r.target for r in item.new if r.outcome == "failed"}
    found = []
    for pair in diff["pairs"]:
        if pair["role"] != item.role or (failing and pair["new"] not in failing):
            continue
        for difference in unexpected(pair):
            topic = next((t for t in topics if t.subjects.match(f"{difference['kind']} {difference['subject']}")), None)
            if topic:
                found.append((topic.name, pair, difference))
    return found


def line(difference: dict) -> str:
    def shown(value: str | None) -> str:
        return "(none)" if value is None else (value or "(empty)")
    return f"{difference['subject']}: {shown(difference['old'])} -> {shown(difference['new'])}"
