"""Whether the hosts of one role are configured alike: every effective Postfix parameter and
master.cf service equal across them, but those that differ host by host by nature.

Hosts of one role that serve the same mail differently are a fault no single host shows: each
passes its own scenarios, and mail behaves by which host the MX, the balancer or the retry chose.
So every parameter Postfix uses — defaults included, and master.cf's -o overrides — and every
master.cf service (`name/type`: its fields and command) is compared across the role's hosts, as
`mxspec diff` compares an old host with a new one (`same_value`; a value that differs only once
expanded differs by a `$name`, compared itself). What the estate contract says differs host by
host by nature is held, as the diff holds it, to the value each host's inventory implies
(`contract.HOST_PARAMETERS`, `postconf.strays_from_inventory`); left out are the other
host-specific parameters (`contract.HOST_SPECIFIC`, names derived from the host's own,
`NOT_CONFIGURATION`), those the inventory implies no value for, and what the estate names in
`host_specific_parameters`. A password's value is never shown (`postconf.shown`).

A host a change scenario is changing (--mx-change beside this scenario on another worker) is not
compared halfway through the change: its journal is listed in the same read, and the host read
again once the change is put back.

The comparison is plain functions of postconf's output, tested without a host.
"""

from collections.abc import Collection
from dataclasses import dataclass, field

from mxspec.checks import changes, facts
from mxspec.checks.mailhost import MailHost, Subject
from mxspec.checks.postconf import (
    SECTION_MARK,
    differ_in_effect,
    expand_names,
    parse_parameters,
    parse_services,
    same_value,
    sections,
    shown,
    strays_from_inventory,
)
from mxspec.core.errors import MxspecError
from mxspec.core.waiting import poll
from mxspec.estate import contract


@dataclass
class Configuration:
    """One host's Postfix parameters, as read (`facts.EFFECTIVE_CONFIGURATION`)."""

    host: str
    written: dict[str, str] = field(default_factory=dict)  # postconf, postconf -P: as written, defaults included
    expanded: dict[str, str] = field(default_factory=dict)  # postconf -x, postconf -Px: $names expanded
    explicit: set[str] = field(default_factory=set)  # postconf -n: what main.cf sets
    services: dict[str, str] = field(default_factory=dict)  # postconf -M: "name/type" -> fields and command
    implied: dict[str, str] = field(default_factory=dict)  # HOST_PARAMETERS as the host's inventory implies them
    journals: dict[str, str] = field(default_factory=dict)  # change journals on the host -> what each is about

    @property
    def version(self) -> str:
        return self.written.get("mail_version", "?")


def parse_configuration(host: str, output: str, implied: dict[str, str] | None = None) -> Configuration:
    """`implied`: the host's `contract.host_parameters` (none: its inventory implies no value)."""
    part = sections(output)
    journals = dict(line.partition("\t")[::2] for line in part.get("journals", "").splitlines() if line.strip())
    return Configuration(host, {**parse_parameters(part.get("main", "")), **parse_parameters(part.get("overrides", ""))},
                         {**parse_parameters(part.get("main-expanded", "")),
                          **parse_parameters(part.get("overrides-expanded", ""))},
                         set(parse_parameters(part.get("main-explicit", ""))), parse_services(part.get("services", "")),
                         implied or {}, journals)


@dataclass
class Differing:
    """A parameter (or master.cf service) the hosts do not agree on: each host's value as shown, grouped by value."""

    parameter: str  # a parameter, an override (`service/type/parameter`) or a service (`name/type`)
    values: dict[str, str]  # host -> its value ("written (= expanded)" where they differ)
    set_in_main_cf: list[str]  # the hosts whose main.cf sets it
    service: bool = False  # a master.cf service, compared by its fields and command

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
        if self.service:
            said += " (a master.cf service: private unpriv chroot wakeup maxproc command)"
        elif "/" in self.parameter:
            said += " (a master.cf -o override)"
        elif self.set_in_main_cf and len(self.set_in_main_cf) < len(self.values):
            keep = [host for host in self.values if host not in self.set_in_main_cf]
            said += f" (set in main.cf on {', '.join(self.set_in_main_cf)}; {', '.join(keep)} "
            said += f"{'keeps' if len(keep) == 1 else 'keep'} Postfix's default)"
        return f"{self.parameter}: {said}"


@dataclass
class Astray:
    """A host-specific parameter whose value on a host is not the one its inventory implies."""

    parameter: str
    host: str
    value: str  # as the host has it, $names expanded
    implied: str  # as its inventory implies it ("written (= expanded)" where they differ)

    def __str__(self) -> str:
        return (f"{self.parameter}: {self.host} has {self.value or '(empty)'}, where its inventory implies "
                f"{self.implied or '(empty)'} (host-specific, held to the host's inventory)")


@dataclass
class Comparison:
    hosts: list[str]
    compared: int  # parameters compared (host-specific ones included, NOT_CONFIGURATION not)
    differing: list[Differing]
    host_specific: dict[str, dict[str, str]]  # left out, with each host's value
    services: int = 0  # master.cf services compared
    astray: list[Astray] = field(default_factory=list)
    as_inventory: dict[str, dict[str, str]] = field(default_factory=dict)  # host-specific, each as its inventory implies

    @property
    def failures(self) -> list[Differing | Astray]:
        return [*self.differing, *self.astray]


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
    return shown(parameter.rpartition("/")[2], written if same_value(written, expanded) else f"{written} (= {expanded})")


def _astray(name: str, configurations: list[Configuration]) -> list[Astray]:
    """The hosts whose value of a HOST_PARAMETERS parameter is not the one their inventory implies."""
    found = []
    for c in configurations:
        if strays_from_inventory(name, c.expanded, c.implied):
            implied = c.implied[name]
            expanded = expand_names(implied, c.expanded)
            found.append(Astray(name, c.host, shown(name, c.expanded.get(name, "")),
                                shown(name, implied if implied == expanded else f"{implied} (= {expanded})")))
    return found


def _service_differences(configurations: list[Configuration]) -> tuple[int, list[Differing]]:
    """master.cf services by `name/type`: how many, and those whose fields or command differ, or one host lacks."""
    names = sorted({name for c in configurations for name in c.services})
    differing = [Differing(name, {c.host: c.services.get(name, "none (not in its master.cf)") for c in configurations},
                           [], service=True)
                 for name in names if len({c.services.get(name) for c in configurations}) > 1]
    return len(names), differing


def compare(configurations: list[Configuration], declared: Collection[str] = ()) -> Comparison:
    """Each parameter's and service's values across the hosts: those that differ, the host-specific
    parameters held to each host's inventory, and the host-specific ones left out."""
    differing, left_out, as_inventory, astray = [], {}, {}, []
    names = sorted({name for c in configurations for name in c.expanded} - contract.NOT_CONFIGURATION)
    for name in names:
        if not differ_in_effect([c.written.get(name) for c in configurations],
                                [c.expanded.get(name) for c in configurations]):
            continue
        values = {c.host: _shown(c, name) for c in configurations}
        # Only where the hosts differ: the inventory cannot set these (the contract renders them from
        # the host's name), so a value all hosts share is the estate's own, not a slip on one host.
        if name in contract.HOST_PARAMETERS and name not in declared and any(name in c.implied for c in configurations):
            strays = _astray(name, configurations)
            astray += strays
            if not strays:
                as_inventory[name] = values
            continue
        if host_specific(name, configurations, declared):
            left_out[name] = values
            continue
        differing.append(Differing(name, values, [c.host for c in configurations if name in c.explicit]))
    services, differing_services = _service_differences(configurations)
    return Comparison([c.host for c in configurations], len(names), differing + differing_services, left_out,
                      services, astray, as_inventory)


def evidence(role: str, configurations: list[Configuration], comparison: Comparison) -> list[str]:
    """What was compared: each host's Postfix, the parameters that differ and those left out, with each host's value."""
    lines = [f"-- the hosts playing {role}: " + ", ".join(f"{c.host} (Postfix {c.version})" for c in configurations),
             f"-- {comparison.compared} parameters (postconf, postconf -P; defaults included) and {comparison.services} "
             f"master.cf services (postconf -M) compared; {len(comparison.differing)} differ"]
    lines += [f"   {difference}" for difference in comparison.differing]
    if comparison.astray:
        lines.append(f"-- host-specific, but not as the host's inventory implies: {len(comparison.astray)}")
        lines += [f"   {astray}" for astray in comparison.astray]
    for title, group in (("host-specific, each as its inventory implies", comparison.as_inventory),
                         ("left out as host-specific", comparison.host_specific)):
        if group:
            lines.append(f"-- {title}: {len(group)}")
            lines += [f"   {name}: " + "; ".join(f"{host} has {value or '(empty)'}" for host, value in values.items())
                      for name, values in group.items()]
    return lines


def implied_parameters(host: MailHost) -> dict[str, str]:
    """The host's HOST_PARAMETERS as its inventory implies them; none where the inventory cannot render them
    (as `mxspec diff` reads them: such a parameter is left out)."""
    try:
        return contract.host_parameters(host.host.vars, host.name)
    except MxspecError:
        return {}


def read_configuration(host: MailHost) -> Configuration:
    """The host's effective configuration, read once no change scenario has the host changed.

    A host with a change journal is read again until the journal is gone, within the run's timeout;
    fails naming the journal (and the scenario it belongs to) if it stays.
    """
    implied = implied_parameters(host)
    journals: dict[str, str] = {}

    def probe() -> Configuration | None:
        result = host.run(facts.EFFECTIVE_CONFIGURATION)
        output = str(result.stdout)
        changing = result.rc == changes.CHANGING and f"{SECTION_MARK}journals" in output
        if result.rc != 0 and not changing:
            raise AssertionError(f"host {host.name}: reading the effective Postfix configuration: exit {result.rc}: "
                                 f"{(result.stderr or output).strip()}")
        configuration = parse_configuration(host.name, output, implied)
        journals.clear()
        journals.update(configuration.journals)
        return None if configuration.journals else configuration

    configuration = poll(host.timeout, probe)
    if configuration is None:
        held = "; ".join(f"{journal} ({about or 'no about file'})" for journal, about in journals.items())
        raise AssertionError(
            f"host {host.name}: was being changed by a change scenario (of this run, beside this one) for the "
            f"{host.timeout:g} s waited, so it cannot be compared with the other hosts of its role: change journal "
            f"{held}; if no run is changing the host, put it back with `sh {next(iter(journals))}/restore.sh` on the host")
    return configuration


def configured_alike(estate: Subject, role: str, hosts: list[MailHost]) -> None:
    """Every effective Postfix parameter and master.cf service of these hosts (the estate's hosts playing
    the role) is equal across them, but the host-specific parameters, held to each host's inventory or left
    out; fails naming each parameter or service that differs, with every host's value of it, and each host
    whose host-specific value strays from its inventory."""
    configurations = [read_configuration(host) for host in hosts]
    # Declared for the estate, a role or a host: a parameter any of them names is left out.
    declared = {name for host in hosts for name in host.setting("host_specific_parameters")}
    comparison = compare(configurations, declared)
    estate.evidence.extend(evidence(role, configurations, comparison))
    failures = comparison.failures
    if failures:
        count = len(failures)
        raise AssertionError(
            f"estate {estate.name}: the hosts playing {role} ({', '.join(comparison.hosts)}) are not configured "
            f"alike: {count} Postfix {'setting differs' if count == 1 else 'settings differ'} (host-specific "
            "parameters held to each host's inventory or left out; an estate names more in "
            "host_specific_parameters):\n  " + "\n  ".join(str(failure) for failure in failures))
