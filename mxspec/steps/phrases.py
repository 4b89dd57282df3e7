"""Parse types shared by step phrases, so one step serves many wordings of its values."""

import re

import parse

from mxspec.estate.roles import ROLES

QUOTED = re.compile(r'"([^"]*)"')


@parse.with_pattern(r'"[^"]*"(?:(?:,\s*|\s+(?:or|and)\s+)"[^"]*")*')
def quoted_list(text: str) -> list[str]:
    """`"fatal:" or "panic:"`, `"a", "b" and "c"` -> the quoted words."""
    return QUOTED.findall(text)


@parse.with_pattern(r'"[^"]*"')
def quoted(text: str) -> str:
    return text[1:-1]


@parse.with_pattern(r"\d+|\{\{\s*[\w.]+\s*\}\}")
def count(text: str) -> str:
    """A number, or an inventory reference that gives one."""
    return text


# What mxspec can send, in the words features use (see mxspec.checks.smtpchecks.build_message).
MESSAGE_KINDS = {"a clean message": "clean", "a message with the EICAR test virus attached": "virus",
                 "a message carrying the GTUBE spam test pattern": "spam"}


@parse.with_pattern("|".join(re.escape(kind) for kind in MESSAGE_KINDS))
def message_kind(text: str) -> str:
    return MESSAGE_KINDS[text]


@parse.with_pattern("|".join(re.escape(role) for role in ROLES))
def role(text: str) -> str:
    """A role by its name (inbound-mx, ...): a misspelt one leaves the step undefined, before any host is contacted."""
    return text


TYPES = {"Quoted": quoted, "QuotedList": quoted_list, "Count": count, "MessageKind": message_kind, "Role": role}
