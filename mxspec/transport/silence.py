"""Endpoints that did not answer within their bound, remembered for the run.

A DNS server or SMTP endpoint that is down costs every probe that needs it its whole bound:
with the estate's DNS server stopped, a run spent one bound per probe to say what the first
timeout had already shown. So the first silence is remembered with the scenario it happened in
and what that probe saw; later probes of the same endpoint fail at once, saying so. Only a
silence is remembered — an endpoint that refuses or answers wrongly is asked again, since its
answer may differ for the next probe.
"""

from dataclasses import dataclass

from mxspec.core.errors import DependencyDown


@dataclass(frozen=True)
class Silence:
    at: str  # the scenario (and its target) where the endpoint first did not answer
    said: str  # what that probe reported


class Silences:
    """The run's silent endpoints, by name ("DNS server 10.213.0.3", "SMTP 10.213.0.21:25")."""

    def __init__(self) -> None:
        self.known: dict[str, Silence] = {}
        self.scenario = ""  # what runs now: set before each scenario

    def check(self, endpoint: str) -> None:
        """Fail at once if the endpoint did not answer earlier in this run."""
        silence = self.known.get(endpoint)
        if silence is not None:
            raise DependencyDown(endpoint, f"{endpoint} did not answer earlier in this run "
                                           f"(at {silence.at or 'the start'}): {silence.said}")

    def remember(self, endpoint: str, said: str) -> None:
        self.known.setdefault(endpoint, Silence(self.scenario, said))
