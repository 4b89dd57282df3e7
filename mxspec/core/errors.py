"""The error taxonomy: what went wrong decides how it is shown and how the run ends.

- `MxspecError` (also named `BadInput`): bad input or an unusable environment. One message that
  names the file and line (or the option); `mxspec` exits 2, pytest stops with a usage error.
- `HostUnreachable`: a host could not be reached (or the connection dropped); its scenarios fail
  at once with `host NAME unreachable: reason`, the other hosts carry on.
- `CommandTimeout`: a command on a host gave no answer within its bound.
- `BehaviourFailed`: the host did not behave as the scenario says (an AssertionError, so plain
  `assert` in a step means the same); the message says what was expected and seen, the
  scenario's evidence (commands, SMTP transcripts, DNS answers) goes with it. A timeout while
  talking SMTP is one of these; `DependencyDown` is the one for an endpoint that did not answer.
"""


class MxspecError(Exception):
    """Bad input or an unusable environment; the message says what and where."""


BadInput = MxspecError


class HostUnreachable(Exception):
    """The host could not be reached; the message is `host NAME unreachable: reason`."""


class CommandTimeout(Exception):
    """A command on a host gave no answer within its bound."""


class BehaviourFailed(AssertionError):
    """The host did not do what the scenario says; the message says what was expected and seen."""


class DependencyDown(BehaviourFailed):
    """An endpoint the scenario needs (a DNS server, an SMTP service) did not answer within its bound,
    now or earlier in the run; `endpoint` names it, so failures that share it can be grouped."""

    def __init__(self, endpoint: str, message: str):
        super().__init__(message)
        self.endpoint = endpoint
