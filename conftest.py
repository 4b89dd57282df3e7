"""The project's step definitions, visible to every feature (the machinery is the mxspec plugin)."""

from steps import MODULES as pytest_plugins  # noqa: F401
