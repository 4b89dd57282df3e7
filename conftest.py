"""The project's own step definitions (steps/), beside mxspec's built-in ones, visible to every feature."""

from steps import MODULES as pytest_plugins  # noqa: F401
