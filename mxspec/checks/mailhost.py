"""What a check sees of the host (or estate) under test: inventory values, connection, evidence."""

from typing import Any

from mxspec.estate import contract, values
from mxspec.estate.inventory import named_host
from mxspec.estate.target import Target
from mxspec.transport.connection import CommandResult, Connection, ConnectionPool
from mxspec.transport.openssh import resolve


class Subject:
    """Inventory values and evidence shared by host-level and estate-level scenarios."""

    def __init__(self, target: Target, pool: ConnectionPool, timeout: float, evidence: list[str]):
        self.target = target
        self.name = target.name
        self.vars = target.vars
        self.pool = pool
        self.timeout = timeout
        self.evidence = evidence

    def value(self, text: str) -> Any:
        """The text with `{{ name }}` references replaced by inventory values."""
        return values.expand(text, self.vars, f"{self.name} ({self.target.where})")

    def setting(self, name: str) -> Any:
        """A declared variable (`estate.contract`), typed, with its default where the inventory sets none."""
        variable = contract.CONTRACT[name]  # a KeyError here is a step reading an undeclared variable
        if name in self.vars:
            return contract.typed(name, values.usable(name, self.vars[name]))
        if variable.required:
            raise values.MissingVariable(f"inventory variable '{name}' is not set for {self.name} ({self.target.where})")
        return variable.default

    def has(self, name: str) -> bool:
        """Whether the inventory sets this declared variable for the host (or estate)."""
        contract.CONTRACT[name]  # noqa: B018 - a KeyError here is a step asking about an undeclared variable
        return name in self.vars

    def table(self, datatable: list[list[str]]) -> list[dict]:
        return values.expand_table(datatable, self.vars, f"{self.name} ({self.target.where})")

    def other_host(self, variable: str) -> "MailHost":
        """A host named by an inventory variable (e.g. the mailstore), over the run's connections."""
        where = self.target.host.origins.get(variable, self.target.where) if self.target.host else self.target.where
        host = named_host(self.setting(variable), variable, self.name, self.target.estate.name, where)
        return MailHost(Target(self.target.estate, host), self.pool, self.timeout, self.evidence)


    def hosts_playing(self, role: str) -> list["MailHost"]:
        """The estate's hosts with this role, in inventory order, over the run's connections."""
        return [MailHost(Target(self.target.estate, host), self.pool, self.timeout, self.evidence)
                for host in self.target.estate.hosts.values() if host.has_any_role({role})]


class MailHost(Subject):
    def __init__(self, target: Target, pool: ConnectionPool, timeout: float, evidence: list[str]):
        super().__init__(target, pool, timeout, evidence)
        assert target.host is not None, "a MailHost is a host, not an estate"
        self.host = target.host
        self.roles = target.host.roles

    @property
    def connection(self) -> Connection:
        """Asked of the pool at each use, never kept: the pool keeps a bounded number of hosts open, and a
        scenario over all of a role's hosts would otherwise hold every one of them open to the end."""
        return self.pool.get(self.host)

    @property
    def address(self) -> str:
        """Where mxspec's SMTP probes go: `smtp_address`, else the connection target's address."""
        return str(self.setting("smtp_address") or resolve(self.host.target, self.host.ssh_config))

    def run(self, command: str, *args: str) -> CommandResult:
        return self.connection.run(command, *args)

    def output(self, command: str, what: str) -> str:
        """The command's output; a failure fails the check, saying what it was for and why (the
        command itself, which may be long, is in the evidence)."""
        result = self.run(command)
        if result.rc != 0:
            raise AssertionError(f"host {self.name}: {what}: exit {result.rc}: "
                                 f"{(result.stderr or result.stdout).strip()}")
        return str(result.stdout)

    @property
    def testinfra(self) -> Any:
        """testinfra's Host over the same connection, for its modules (package, service, ...)."""
        self.connection.check()
        return self.connection.testinfra
