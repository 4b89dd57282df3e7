"""The project's own step definitions, beside mxspec's built-in ones (`mxspec.steps`).

List a module here and the project's conftest.py loads it for every feature; `mxspec steps`
lists its phrases with the built-in ones.
"""

MODULES: list[str] = []
