"""Which hosts a scenario runs on: its role tags against the selected estates."""

from dataclasses import dataclass

from mxspec.estate.inventory import Estate, Host
from mxspec.estate.roles import TAG_ROLES


@dataclass(frozen=True)
class Target:
    """What one collected scenario runs against: a host, or an estate as a whole."""

    estate: Estate
    host: Host | None = None

    @property
    def name(self) -> str:
        return self.host.name if self.host else self.estate.name

    @property
    def vars(self) -> dict:
        return self.host.vars if self.host else self.estate.vars

    @property
    def where(self) -> str:
        return self.host.where if self.host else self.estate.path

    def __hash__(self) -> int:
        return hash((self.estate.name, self.name))


def targets_for(tags: set[str], estates: list[Estate]) -> list[Target]:
    """`@estate`: once per estate; role tags: each host with one of those roles; else every host."""
    if "estate" in tags:
        return [Target(estate) for estate in estates]
    wanted = {TAG_ROLES[tag] for tag in tags if tag in TAG_ROLES}
    return [
        Target(estate, host)
        for estate in estates
        for host in estate.hosts.values()
        if not wanted or host.has_any_role(wanted)
    ]
