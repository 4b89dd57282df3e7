"""What differs between an old host and a new one, and why: plain functions of two surveys.

A difference is information, not a verdict: each says what the old host has, what the new one
has, and the reason where one is known (Postfix's own default moved, a value set on one side
only, a parameter that differs host by host by nature).
"""

import re
from dataclasses import asdict, dataclass, field

from mxspec.checks.postconf import differ_in_effect, same_value, shown, strays_from_inventory
from mxspec.diff.survey import MapUse, Survey
from mxspec.estate import contract

MILTER_PARAMETERS = ("smtpd_milters", "non_smtpd_milters", "milter_default_action")
MILTER_LISTS = ("smtpd_milters", "non_smtpd_milters")
# Mail-stack packages compared between hosts, besides those the inventories name (`packages`).
MAIL_PACKAGES = re.compile(r"postfix.*|opendkim.*|opendmarc|rspamd.*|clamav.*|spamassassin|spamass-milter|spamc|"
                           r"amavisd-new|dovecot.*|sasl2-bin|libsasl2-modules.*|postgrey|policyd-.*|python3-milter|"
                           r"exim4.*|sendmail.*")


@dataclass
class Difference:
    kind: str  # parameter, service, milter, socket, map, package
    subject: str  # what differs: a parameter, a service, a key of a map...
    old: str | None  # None: the old host has none
    new: str | None
    reason: str = ""
    expected: bool = False  # differs host by host by nature

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Pair:
    """One new host against one old host of a role, and what differs."""

    role: str
    old: str
    new: str
    old_version: str = ""
    new_version: str = ""
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"role": self.role, "old": self.old, "new": self.new, "old_postfix": self.old_version,
                "new_postfix": self.new_version, "differences": [d.as_dict() for d in self.differences]}


def compare(old: Survey, new: Survey, expected_old: dict[str, str], expected_new: dict[str, str],
            packages: set[str]) -> list[Difference]:
    """Everything but the maps (looked up on the hosts, then `map_differences`).

    `expected_old`/`expected_new`: each host's HOST_PARAMETERS as its inventory says
    (`contract.host_parameters`); `packages`: the packages the inventories name.
    """
    return (parameter_differences(old, new, expected_old, expected_new) + milter_differences(old, new)
            + service_differences(old, new) + socket_differences(old, new) + package_differences(old, new, packages))


def parameter_differences(old: Survey, new: Survey, expected_old: dict[str, str],
                          expected_new: dict[str, str]) -> list[Difference]:
    found = []
    for name in sorted(set(old.parameters) | set(new.parameters)):
        if name in contract.NOT_CONFIGURATION or name in MILTER_PARAMETERS:
            continue
        if name not in old.parameters or name not in new.parameters:
            has = old if name in old.parameters else new
            found.append(Difference("parameter", name, _masked(name, old.parameters.get(name)),
                                    _masked(name, new.parameters.get(name)),
                                    f"only Postfix {has.version} ({has.name}) knows this parameter"))
            continue
        raw_old, raw_new = old.parameters[name], new.parameters[name]
        value_old, value_new = old.expanded.get(name, raw_old), new.expanded.get(name, raw_new)
        if not differ_in_effect([raw_old, raw_new], [value_old, value_new]):
            continue
        expected, reason = _explain(name, old, new, expected_old, expected_new)
        found.append(Difference("parameter", name, _shown(name, raw_old, value_old), _shown(name, raw_new, value_new),
                                reason, expected))
    return found


def _shown(name: str, raw: str, value: str) -> str:
    return shown(name, raw if raw == value else f"{raw} (= {value})")


def _explain(name: str, old: Survey, new: Survey, expected_old: dict[str, str],
             expected_new: dict[str, str]) -> tuple[bool, str]:
    if name in contract.HOST_SPECIFIC:
        return _against_inventory(name, old, new, expected_old, expected_new)
    if all(contract.derived_from_name(name, survey.expanded, survey.explicit) for survey in (old, new)):
        return True, "host-specific: derived from the host's name"
    set_old, set_new = name in old.explicit, name in new.explicit
    if not set_old and not set_new:
        return False, "neither host sets it: " + (_default_moved(name, old, new)
                                                  or "the same default, expanded from parameters that differ")
    if set_old and set_new:
        return False, "both hosts set it in main.cf"
    setter, keeper = (old, new) if set_old else (new, old)
    reason = f"set in main.cf on {setter.name} only; {keeper.name} keeps its default"
    moved = _default_moved(name, old, new)
    return False, reason + (f", and {moved}" if moved else "")


def _default_moved(name: str, old: Survey, new: Survey) -> str:
    """Why the two hosts' defaults give different values, or '' when they do not."""
    default_old, default_new = old.defaults.get(name, ""), new.defaults.get(name, "")
    if default_old != default_new:
        return (f"the default moved (Postfix {old.version} on {old.name}: {default_old or '(empty)'}; "
                f"Postfix {new.version} on {new.name}: {default_new or '(empty)'})")
    if "compatibility_level" in default_old and old.compatibility_level != new.compatibility_level:
        return (f"the default depends on compatibility_level ({old.compatibility_level} on {old.name}, "
                f"{new.compatibility_level} on {new.name})")
    return ""


def _against_inventory(name: str, old: Survey, new: Survey, expected_old: dict[str, str],
                       expected_new: dict[str, str]) -> tuple[bool, str]:
    """A host-specific parameter is an expected difference while each host has the value its inventory
    implies (HOST_PARAMETERS), or where no inventory says one; a host that strays from it is a real one."""
    if name not in expected_old and name not in expected_new:
        return True, "host-specific (each host's own)"
    astray = [f"{survey.name} has {shown(name, survey.expanded.get(name, ''))!r}, its inventory implies "
              f"{expected[name]!r}" for survey, expected in ((old, expected_old), (new, expected_new))
              if strays_from_inventory(name, survey.expanded, expected)]
    if astray:
        return False, f"host-specific, but {'; '.join(astray)}"
    return True, "host-specific, each as its inventory says"


def _masked(name: str, value: str | None) -> str | None:
    return None if value is None else shown(name, value)


def milter_list(value: str) -> list[str]:
    """The milters of smtpd_milters, in order: separated by commas or spaces, `{ ... }` kept whole."""
    return [" ".join(item.split()) for item in re.findall(r"\{[^}]*\}|[^\s,{}]+", value)]


def milter_differences(old: Survey, new: Survey) -> list[Difference]:
    found = []
    for name in MILTER_PARAMETERS:
        value_old, value_new = old.expanded.get(name, ""), new.expanded.get(name, "")
        if same_value(value_old, value_new):
            continue
        if name not in MILTER_LISTS:
            found.append(Difference("milter", name, value_old, value_new, _explain(name, old, new, {}, {})[1]))
            continue
        milters_old, milters_new = milter_list(value_old), milter_list(value_new)
        found += [Difference("milter", name, milter, None, f"not in {new.name}'s {name}")
                  for milter in milters_old if milter not in milters_new]
        found += [Difference("milter", name, None, milter, f"not in {old.name}'s {name}")
                  for milter in milters_new if milter not in milters_old]
        reordered = _reordered(milters_old, milters_new)
        if reordered:
            found.append(Difference("milter", f"{name}: order", ", ".join(reordered[0]), ", ".join(reordered[1]),
                                    "the milters both have see mail in another order"))
    return found


def service_differences(old: Survey, new: Survey) -> list[Difference]:
    found = []
    for service in sorted(set(old.services) | set(new.services)):
        line_old, line_new = old.services.get(service), new.services.get(service)
        if line_old != line_new:
            reason = "in master.cf of one host only" if line_old is None or line_new is None \
                else "master.cf fields (private unpriv chroot wakeup maxproc command) differ"
            found.append(Difference("service", service, line_old, line_new, reason))
    for override in sorted(set(old.overrides) | set(new.overrides)):
        value_old, value_new = old.overrides.get(override), new.overrides.get(override)
        if value_old is None or value_new is None or not same_value(value_old, value_new):
            parameter = override.rpartition("/")[2]
            found.append(Difference("service", f"{override} (-o)", _masked(parameter, value_old),
                                    _masked(parameter, value_new), "a master.cf -o override"))
    return found


def socket_differences(old: Survey, new: Survey) -> list[Difference]:
    found = []
    for socket in sorted(set(old.sockets) ^ set(new.sockets), key=_port_order):
        listener = old if socket in old.sockets else new
        process = f" ({listener.sockets[socket]})" if listener.sockets[socket] else ""
        found.append(Difference("socket", socket, "listening" if listener is old else None,
                                "listening" if listener is new else None, f"listening on {listener.name} only{process}"))
    return found


def _port_order(socket: str) -> tuple[int, str]:
    port = socket.rpartition(":")[2]
    return (int(port) if port.isdigit() else 0, socket)


def package_differences(old: Survey, new: Survey, named: set[str]) -> list[Difference]:
    found = []
    for package in sorted(set(old.packages) | set(new.packages)):
        if not (MAIL_PACKAGES.fullmatch(package) or package in named):
            continue
        version_old, version_new = old.packages.get(package), new.packages.get(package)
        if version_old != version_new:
            reason = "installed on one host only" if version_old is None or version_new is None else "another version"
            found.append(Difference("package", package, version_old, version_new, reason))
    return found


def map_differences(use: MapUse, keys: list[str], answers_old: dict[str, str], answers_new: dict[str, str],
                    new: Survey, new_maps: tuple[str, ...]) -> list[Difference]:
    """Each key of the old host's tables whose answer on the new host differs or is missing.

    Keys the old host itself does not answer (a source edited and not compiled: the live
    configuration scenario's concern) are left out: there is no old answer to keep.
    """
    where = f"{new.name}'s {use.parameter}: " + (" ".join(new_maps) if new_maps else "no table")
    found = []
    for key in keys:
        answer_old, answer_new = answers_old.get(key.lower()), answers_new.get(key.lower())
        if answer_old is None or (answer_new is not None and same_value(answer_old, answer_new)):
            continue
        reason = f"not found in {where}" if answer_new is None else f"answered otherwise by {where}"
        found.append(Difference("map", f"{use.parameter} {key}", answer_old, answer_new, reason))
    return found


def rule_differences(use: MapUse, rules_old: dict[str, str], rules_new: dict[str, str], new: Survey,
                     new_maps: tuple[str, ...]) -> list[Difference]:
    """Each rule of the old host's regexp/pcre tables the new host's tables lack or answer otherwise,
    and rules both have in another order (the first match wins)."""
    where = f"{new.name}'s {use.parameter}: " + (" ".join(new_maps) if new_maps else "no table")
    found = []
    for pattern, result in rules_old.items():
        if pattern not in rules_new:
            found.append(Difference("map", f"{use.parameter} rule {pattern}", result, None, f"no such rule in {where}"))
        elif not same_value(result, rules_new[pattern]):
            found.append(Difference("map", f"{use.parameter} rule {pattern}", result, rules_new[pattern],
                                    f"answered otherwise by {where}"))
    reordered = _reordered(list(rules_old), list(rules_new))
    if reordered:
        found.append(Difference("map", f"{use.parameter} rule order", " ".join(reordered[0]), " ".join(reordered[1]),
                                "the rules both have are tried in another order: the first match wins"))
    return found


def _reordered(old: list[str], new: list[str]) -> tuple[list[str], list[str]] | None:
    """The items both lists have, in each one's order, when those orders differ (first match wins)."""
    common_old = [item for item in old if item in new]
    common_new = [item for item in new if item in old]
    return (common_old, common_new) if common_old != common_new else None
