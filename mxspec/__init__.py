"""mxspec: behaviour-driven acceptance for mail estates (pytest + pytest-bdd + pytest-testinfra).

Installing the package is all it takes: its pytest plugin (`mxspec.bdd.plugin`, registered
through the `pytest11` entry point) loads the built-in steps (`mxspec.steps`), and the `mxspec`
command brings up the built-in lab (`mxspec.lab.builtin`). The layers, from the top down, are
described in ARCHITECTURE.md: cli -> bdd | lab -> steps | report -> checks -> transport -> estate -> core.
"""

from mxspec.core.errors import (
    BadInput,
    BehaviourFailed,
    CommandTimeout,
    HostUnreachable,
    MxspecError,
)

__version__ = "0.1.0"
__all__ = ["BadInput", "BehaviourFailed", "CommandTimeout", "HostUnreachable", "MxspecError", "__version__"]
