"""Errors an operator can act on: shown as one message, never as a traceback."""


class MxspecError(Exception):
    """Bad input or an unusable environment; the message says what and where."""
