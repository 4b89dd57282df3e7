"""Step definitions: the phrases features are written in (`mxspec steps` lists them)."""

MODULES = ["steps.common", "steps.smtp", "steps.dns", "steps.routing", "steps.submission", "steps.changes"]
