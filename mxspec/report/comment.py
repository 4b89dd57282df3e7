"""`mxspec comment`: post the Markdown readiness report on the pull request a CI job runs for.

Each forge's CI says where it runs through environment variables; this reads them, so the CI
templates stay one line and the posting is tested here rather than in a forge.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import requests

from mxspec.core.errors import MxspecError

NO_REPORT = ("## Migration readiness: no report\n\nThe mxspec gate ended before it wrote a report "
             "(the lab did not come up, or bad input): see the job's log.\n")


@dataclass
class Destination:
    """Where the report is posted: the forge API's URL and the headers it needs."""

    url: str
    headers: dict


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise MxspecError(f"environment variable {name} is not set (is this running in the forge's CI job?)")
    return value


def _github() -> Destination:
    event_path = _env("GITHUB_EVENT_PATH")
    try:
        number = json.loads(Path(event_path).read_text())["pull_request"]["number"]
    except (OSError, ValueError, KeyError, TypeError):
        raise MxspecError(f"{event_path}: not a pull request event (the workflow must run on pull_request)") from None
    api = _env("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    return Destination(f"{api}/repos/{_env('GITHUB_REPOSITORY')}/issues/{number}/comments",
                  {"Authorization": f"Bearer {_env('GITHUB_TOKEN')}", "Accept": "application/vnd.github+json"})


def _gitlab() -> Destination:
    api = _env("CI_API_V4_URL").rstrip("/")
    return Destination(f"{api}/projects/{_env('CI_PROJECT_ID')}/merge_requests/{_env('CI_MERGE_REQUEST_IID')}/notes",
                  {"PRIVATE-TOKEN": _env("MXSPEC_API_TOKEN")})


FORGES = {"github": _github, "gitlab": _gitlab}


def post(forge: str, report: str, timeout: float = 30) -> int:
    destination = FORGES[forge]()
    path = Path(report)
    body = path.read_text() if path.is_file() else NO_REPORT
    try:
        response = requests.post(destination.url, json={"body": body}, headers=destination.headers, timeout=timeout)
    except requests.RequestException as error:
        raise MxspecError(f"could not post the report to {destination.url}: {error}") from None
    if not response.ok:
        raise MxspecError(f"posting the report to {destination.url} got HTTP {response.status_code}: "
                          f"{response.text[:300]}")
    print(f"report posted: {destination.url} (HTTP {response.status_code})")
    return 0 if path.is_file() else 1
