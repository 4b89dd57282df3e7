"""Binds every .feature file in this folder to pytest; the steps live in steps/."""

from pytest_bdd import scenarios

scenarios(".")
