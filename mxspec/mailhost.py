"""What a step sees of the host under test: its inventory values and its shared connection."""

from mxspec import values
from mxspec.connection import Command, Connection
from mxspec.selection import Target


class MailHost:
    def __init__(self, target: Target, connection: Connection, transcript: list[Command]):
        self.target = target
        self.name = target.name
        self.roles = target.host.roles
        self.vars = target.vars
        self.connection = connection
        self.transcript = transcript

    def value(self, text: str):
        """The text with `{{ name }}` references replaced by this host's inventory values."""
        return values.expand(text, self.vars, f"host {self.name} ({self.target.where})")

    def table(self, datatable) -> list[dict]:
        return values.expand_table(datatable, self.vars, f"host {self.name} ({self.target.where})")

    def run(self, command: str, *args: str):
        return self.connection.run(command, *args)

    @property
    def testinfra(self):
        """testinfra's Host over the same connection, for its modules (package, service, ...)."""
        self.connection.check()
        return self.connection.testinfra
