"""The CI templates: their report-posting step, run as the forge would run it, against a forge on loopback."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT

TEMPLATES = PROJECT / "templates" / "ci"
REPORT = "## Migration readiness: **NO-GO** (old-mx → new-mx)\n\n| a | b |\n"


class Forge(BaseHTTPRequestHandler):
    """Records each POST; answers with the status the test sets."""

    posts: list = []
    status = 201

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Forge.posts.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(Forge.status)
        self.end_headers()
        self.wfile.write(b'{"message": "Forbidden"}' if Forge.status >= 400 else b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def forge():
    Forge.posts, Forge.status = [], 201
    server = HTTPServer(("127.0.0.1", 0), Forge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def github_post_step() -> tuple[str, dict]:
    steps = yaml.safe_load((TEMPLATES / "github-actions.yml").read_text())["jobs"]["gate"]["steps"]
    step = next(s for s in steps if s.get("name") == "Post the report on the pull request")
    return step["run"], step.get("env", {})


def gitlab_post_line() -> str:
    script = yaml.safe_load((TEMPLATES / "gitlab-ci.yml").read_text())["mxspec-gate"]["script"]
    return next(line for line in script if "comment" in line)


def run_step(command: str, workdir: Path, env: dict) -> subprocess.CompletedProcess:
    """The step's shell line in a job's checkout (`bin/python` is this interpreter here)."""
    command = command.replace("bin/python", sys.executable)
    return subprocess.run(["bash", "-c", command], cwd=workdir, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT), **env})


def checkout_with_report(tmp_path: Path) -> Path:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "readiness.md").write_text(REPORT)
    return tmp_path


def github_env(tmp_path: Path, forge: str) -> dict:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42}}))
    return {"GITHUB_API_URL": forge, "GITHUB_REPOSITORY": "acme/mail-config", "GITHUB_EVENT_PATH": str(event),
            "GITHUB_TOKEN": "gh-token"}


def test_github_workflow_posts_the_markdown_report_on_the_pull_request(tmp_path, forge):
    command, step_env = github_post_step()
    assert step_env == {"GITHUB_TOKEN": "${{ github.token }}"}
    result = run_step(command, checkout_with_report(tmp_path), github_env(tmp_path, forge))
    assert result.returncode == 0, result.stdout + result.stderr
    [(path, headers, body)] = Forge.posts
    assert path == "/repos/acme/mail-config/issues/42/comments"
    assert headers["Authorization"] == "Bearer gh-token"
    assert body == {"body": REPORT}


def test_gitlab_job_posts_the_markdown_report_on_the_merge_request(tmp_path, forge):
    env = {"CI_API_V4_URL": f"{forge}/api/v4", "CI_PROJECT_ID": "17", "CI_MERGE_REQUEST_IID": "5",
           "MXSPEC_API_TOKEN": "gl-token"}
    result = run_step(gitlab_post_line(), checkout_with_report(tmp_path), env)
    assert result.returncode == 0, result.stdout + result.stderr
    [(path, headers, body)] = Forge.posts
    assert path == "/api/v4/projects/17/merge_requests/5/notes"
    assert headers["PRIVATE-TOKEN"] == "gl-token"
    assert body == {"body": REPORT}


def test_a_gate_that_wrote_no_report_still_says_so_on_the_pull_request(tmp_path, forge):
    command, _ = github_post_step()
    result = run_step(command, tmp_path, github_env(tmp_path, forge))
    assert result.returncode == 1
    [(_, _, body)] = Forge.posts
    assert "no report" in body["body"] and "see the job's log" in body["body"]


def test_posting_problems_are_named(tmp_path, forge):
    command, _ = github_post_step()
    env = github_env(tmp_path, forge)
    checkout_with_report(tmp_path)
    result = run_step(command, tmp_path, {k: v for k, v in env.items() if k != "GITHUB_TOKEN"})
    assert (result.returncode, result.stderr.strip()) == (
        2, "mxspec: error: environment variable GITHUB_TOKEN is not set (is this running in the forge's CI job?)")
    Forge.status = 403
    result = run_step(command, tmp_path, env)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"mxspec: error: posting the report to {forge}/repos/acme/mail-config/issues/42/"
                                     f"comments got HTTP 403: {{\"message\": \"Forbidden\"}}")
    assert "Traceback" not in result.stderr
