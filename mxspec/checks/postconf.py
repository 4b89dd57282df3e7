"""postconf's output read as text: `name = value` lines, and one command's output cut into marked
sections, master.cf's services, values compared and shown. Plain functions, shared by the checks
and `mxspec diff`, tested without a host."""

import re
from collections.abc import Mapping

# A value shown only as a table it names (`hash:/etc/postfix/sasl_passwd`): the secret is in the table.
_TABLE_REFERENCE = re.compile(r"(?:(?:proxy:)?[a-z0-9]+:/[^\s,{}]*[\s,]*)+")


def parse_parameters(text: str) -> dict[str, str]:
    """`name = value` lines (postconf, postconf -x, postconf -P) as a dict."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if not sep:
            name, sep, value = line.rstrip().partition(" =")  # an empty value: `name =`
        if sep and name.strip():
            found[name.strip()] = value.strip()
    return found


# What starts each section of one command's output (`echo MARK NAME; command`): the host is read
# once for several things, and the output is cut back into them with `sections`.
SECTION_MARK = "@@mxspec-section "


def sections(output: str, mark: str = SECTION_MARK) -> dict[str, str]:
    """One command's output cut at its `mark NAME` lines: name -> the text after it."""
    parts: dict[str, str] = {}
    name = None
    for line in output.splitlines(keepends=True):
        if line.startswith(mark):
            name = line[len(mark):].strip()
            parts[name] = ""
        elif name is not None:
            parts[name] += line
    return parts


def parse_services(text: str) -> dict[str, str]:
    """master.cf entries (postconf -M) by `name/type`: the six fields and the command, its -o
    overrides left out (postconf -P gives them one by one)."""
    services: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 8:
            continue
        command, skip = [], False
        for word in words[7:]:
            if skip:
                skip = False
            elif word == "-o":
                skip = True
            elif not word.startswith("-o"):
                command.append(word)
        services[f"{words[0]}/{words[1]}"] = " ".join(words[2:7] + command)
    return services


def same_value(a: str, b: str) -> bool:
    """Values equal as Postfix means them: whitespace runs and spaces around commas do not count."""
    def norm(text: str) -> str:
        return re.sub(r"\s*,\s*", ",", " ".join(text.split()))
    return norm(a) == norm(b)


def _alike(values: list[str | None]) -> bool:
    """Every host has the value, the same as Postfix means it."""
    known = [value for value in values if value is not None]
    return len(known) == len(values) and all(same_value(known[0], value) for value in known[1:])


def differ_in_effect(written: list[str | None], expanded: list[str | None]) -> bool:
    """Whether hosts' values of one parameter (as written, and with $names expanded; None: a host lacks
    it) differ as Postfix uses them. Values written alike whose $names expand differently do not: the
    parameter a $name names is compared itself. Except where compatibility_level decides the default."""
    if _alike(expanded):
        return False
    return not (_alike(written) and "compatibility_level" not in str(written[0]))


def expand_names(value: str, expanded: Mapping[str, str]) -> str:
    """`$name` in a value (smtp_helo_name: $myhostname) as a host expands it (its postconf -x)."""
    return re.sub(r"\$\{?(\w+)\}?", lambda match: expanded.get(match[1], match[0]), value)


def strays_from_inventory(name: str, expanded: Mapping[str, str], implied: Mapping[str, str]) -> bool:
    """Whether a host's value of a host-specific parameter is not the one its inventory implies.

    `expanded`: the host's postconf -x; `implied`: its `contract.host_parameters` (none where the
    inventory implies no value: then nothing strays). What `mxspec diff` and the hosts of a role
    compared both hold a host-specific difference to.
    """
    return name in implied and not same_value(expanded.get(name, ""), expand_names(implied[name], expanded))


def shown(name: str, value: str) -> str:
    """A parameter's value as reports may show it: a password's masked, unless it only names tables.

    `smtp_sasl_password_maps = static:user:secret` or `inline:{...}` would put the secret into
    reports and PR comments; `hash:/etc/postfix/sasl_passwd` says only where it is kept.
    """
    secret = "password" in name or "passwd" in name
    return "(masked)" if secret and value.strip() and not _TABLE_REFERENCE.fullmatch(value.strip()) else value
