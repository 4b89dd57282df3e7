"""Binds every .feature file in this folder to pytest; the steps are mxspec's (mxspec/steps/) and the project's (steps/)."""

from pytest_bdd import scenarios

scenarios(".")
