"""Whether the hosts of one role are configured alike: every effective Postfix parameter equal
across them, but those that differ host by host by nature.

Hosts of one role that serve the same mail differently are a fault no single host shows: each
passes its own scenarios, and mail behaves by which host the MX, the balancer or the retry chose.
So every parameter Postfix uses — defaults included, and master.cf's -o overrides — is compared
across the role's hosts, as `mxspec diff` compares an old host with a new one (`same_value`; a
value that differs only once expanded differs by a `$name`, compared itself). Left out: what the
estate contract says differs host by host by nature (`contract.HOST_SPECIFIC`, names derived from
the host's own, `NOT_CONFIGURATION`) and what the estate names in `host_specific_parameters`.
The comparison is plain functions of postconf's output, tested without a host.
"""

from collections.abc import Collection
from dataclasses import dataclass, field

from mxspec.checks import facts
from mxspec.checks.liveconfig import same_value
from mxspec.checks.mailhost import MailHost, Subject
from mxspec.checks.postconf import parse_parameters, sections
from mxspec.estate import contract


@dataclass
class Configuration:
    """One host's Postfix parameters, as read (`facts.EFFECTIVE_CONFIGURATION`)."""

    host: str
    written: dict[str, str] = field(default_factory=dict)  # postconf, postconf -P: as written, defaults included
    expanded: dict[str, str] = field(default_factory=dict)  # postconf -x, postconf -Px: $names expanded
    explicit: set[str] = field(default_factory=set)  # postconf -n: what main.cf sets

    @property
    def version(self) -> str:
        return self.written.get("mail_version", "?")


def parse_configuration(host: str, output: str) -> Configuration:
    part = sections(output, facts.SECTION_MARK)
    return Configuration(host, {**parse_parameters(part.get("main", "")), **parse_parameters(part.get("overrides", ""))},
                         {**parse_parameters(part.get("main-expanded", "")),
                          **parse_parameters(part.get("overrides-expanded", ""))},
                         set(parse_parameters(part.get("main-explicit", ""))))


@dataclass
class Differing:
    """A parameter the hosts do not agree on: each host's value as shown, grouped by value."""

    parameter: str
    values: dict[str, str]  # host -> its value ("written (= expanded)" where they differ)
    set_in_main_cf: list[str]  # the hosts whose main.cf sets it

    def groups(self) -> list[tuple[list[str], str]]:
        """(hosts, value) for each value, the value most hosts have first."""
        by_value: dict[str, list[str]] = {}
        for host, value in self.values.items():
            by_value.setdefault(value, []).append(host)
        return sorted(((hosts, value) for value, hosts in by_value.items()), key=lambda group: -len(group[0]))

    def __str__(self) -> str:
        groups = self.groups()
        said = "; ".join(f"{', '.join(hosts)} {'has' if len(hosts) == 1 else 'have'} {value or '(empty)'}"
                         for hosts, value in groups)
        if len(groups) > 1 and len(groups[0][0]) > len(groups[1][0]):  # most hosts share a value: the others are odd
            odd = [host for hosts, _ in groups[1:] for host in hosts]
            said += f" ({', '.join(odd)} {'differs' if len(odd) == 1 else 'differ'} from the rest)"
        if "/" in self.parameter:
            said += " (a master.cf -o override)"
        elif self.set_in_main_cf and len(self.set_in_main_cf) < len(self.values):
            keep = [host for host in self.values if host not in self.set_in_main_cf]
            said += f" (set in main.cf on {', '.join(self.set_in_main_cf)}; {', '.join(keep)} "
            said += f"{'keeps' if len(keep) == 1 else 'keep'} Postfix's default)"
        return f"{self.parameter}: {said}"


@dataclass
class Comparison:
    hosts: list[str]
    compared: int  # parameters compared (host-specific ones included, NOT_CONFIGURATION not)
    differing: list[Differing]
    host_specific: dict[str, dict[str, str]]  # left out, with each host's value


def host_specific(parameter: str, configurations: list[Configuration], declared: Collection[str]) -> bool:
    """Whether a parameter (or the parameter of a master.cf -o override, `service/type/name`) differs host
    by host by nature, as the contract says, or as the estate declares (`host_specific_parameters`)."""
    name = parameter.rpartition("/")[2]
    return (name in contract.HOST_SPECIFIC or name in declared
            or all(contract.derived_from_name(name, c.expanded, c.explicit) for c in configurations))


def _shown(configuration: Configuration, parameter: str) -> str:
    if parameter not in configuration.expanded:
        if "/" in parameter:  # service/type/name: this host's master.cf leaves the service main.cf's value
            return "none"
        return f"none (Postfix {configuration.version} knows no {parameter})"
    written, expanded = configuration.written.get(parameter, ""), configuration.expanded[parameter]
    return written if same_value(written, expanded) else f"{written} (= {expanded})"


def _all_same(values: list[str | None]) -> bool:
    """Every host has the parameter, with the same value as Postfix means it."""
    known = [value for value in values if value is not None]
    return len(known) == len(values) and all(same_value(known[0], value) for value in known[1:])


def compare(configurations: list[Configuration], declared: Collection[str] = ()) -> Comparison:
    """Each parameter's values across the hosts: those that differ, and the host-specific ones left out."""
    differing, left_out = [], {}
    names = sorted({name for c in configurations for name in c.expanded} - contract.NOT_CONFIGURATION)
    for name in names:
        if _all_same([c.expanded.get(name) for c in configurations]):
            continue
        written = [c.written.get(name) for c in configurations]
        if _all_same(written) and "compatibility_level" not in str(written[0]):
            continue  # the same $names, expanding differently: the parameters they name are compared themselves
        shown = {c.host: _shown(c, name) for c in configurations}
        if host_specific(name, configurations, declared):
            left_out[name] = shown
            continue
        differing.append(Differing(name, shown, [c.host for c in configurations if name in c.explicit]))
    return Comparison([c.host for c in configurations], len(names), differing, left_out)


def evidence(role: str, configurations: list[Configuration], comparison: Comparison) -> list[str]:
    """What was compared: each host's Postfix, the parameters that differ and those left out, with each host's value."""
    lines = [f"-- the hosts playing {role}: " + ", ".join(f"{c.host} (Postfix {c.version})" for c in configurations),
             f"-- {comparison.compared} parameters compared (postconf, postconf -P; defaults included); "
             f"{len(comparison.differing)} differ"]
    lines += [f"   {difference}" for difference in comparison.differing]
    if comparison.host_specific:
        lines.append(f"-- left out as host-specific: {len(comparison.host_specific)}")
        lines += [f"   {name}: " + "; ".join(f"{host} has {value or '(empty)'}" for host, value in values.items())
                  for name, values in comparison.host_specific.items()]
    return lines


def configured_alike(estate: Subject, role: str, hosts: list[MailHost]) -> None:
    """Every effective Postfix parameter of these hosts (the estate's hosts playing the role) is equal
    across them, but the host-specific ones; fails naming each parameter that differs, with every
    host's value of it."""
    configurations = [parse_configuration(host.name, facts.effective_configuration(host)) for host in hosts]
    # Declared for the estate, a role or a host: a parameter any of them names is left out.
    declared = {name for host in hosts for name in host.setting("host_specific_parameters")}
    comparison = compare(configurations, declared)
    estate.evidence.extend(evidence(role, configurations, comparison))
    if comparison.differing:
        count = len(comparison.differing)
        raise AssertionError(
            f"estate {estate.name}: the hosts playing {role} ({', '.join(comparison.hosts)}) are not configured "
            f"alike: {count} Postfix {'parameter differs' if count == 1 else 'parameters differ'} (host-specific "
            "ones left out; an estate names more in host_specific_parameters):\n  "
            + "\n  ".join(str(difference) for difference in comparison.differing))
