"""The roles a mail host can play, and the Gherkin tags that select scenarios by role."""

import difflib

from mxspec.core.errors import MxspecError

ROLES = {
    "inbound-mx": "receives mail from the Internet for the local domains",
    "smtp-router": "routes mail through the in-house milter to its next hop",
    "outbound-mx": "relays mail from authorised clients and users to the Internet",
}

# Tags that are not roles: how a scenario meets hosts, or what it may do to them.
SCOPE_TAGS = {
    "estate": "runs once per estate, not per host (e.g. the estate's DNS)",
    "sends_mail": "delivers real messages to the inventory's test recipients",
    "disruptive": "stops or breaks a service for a moment; runs only with --mx-disruptive",
    "changes_host": "changes a host's configuration and restores it; runs only with --mx-change",
    "canary": "judges a canary's result (`mxspec canary`); runs only with --mx-canary=FILE",
}


def role_tag(role: str) -> str:
    """`inbound-mx` is tagged `@inbound_mx` so that `-m inbound_mx` selects it."""
    return role.replace("-", "_")


TAG_ROLES = {role_tag(role): role for role in ROLES}


def check_role(role: str, where: str) -> None:
    if role not in ROLES:
        close = difflib.get_close_matches(role, list(ROLES), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise MxspecError(f"{where}: unknown role '{role}'{hint}; known: {', '.join(sorted(ROLES))}")


def near_role(name: str) -> str | None:
    """The role a group name nearly spells (`outbond-mx`), or None (also for the roles themselves)."""
    if name.replace("_", "-") in ROLES:
        return None
    close = difflib.get_close_matches(name.replace("_", "-"), list(ROLES), n=1, cutoff=0.8)
    return close[0] if close else None
