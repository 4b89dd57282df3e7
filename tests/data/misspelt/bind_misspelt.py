"""Binds the misspelt feature for tests/test_vocabulary.py (not collected on its own)."""

from pytest_bdd import scenarios

scenarios(".")
