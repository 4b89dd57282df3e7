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


# The sharded variants: N runners each write their shard's results file; one job merges them.

def github_sharded() -> dict:
    return yaml.safe_load((TEMPLATES / "github-actions-sharded.yml").read_text())["jobs"]


def gitlab_sharded() -> dict:
    return yaml.safe_load((TEMPLATES / "gitlab-ci-sharded.yml").read_text())


def shard_lines() -> dict[str, tuple[list[str], str]]:
    """Per forge: the shard numbers its matrix starts, and its shard command with this runner's K and N in it."""
    github = github_sharded()["shard"]
    numbers = [str(k) for k in github["strategy"]["matrix"]["shard"]]
    step = next(s["run"] for s in github["steps"] if "--mx-shard" in s.get("run", ""))
    gitlab = gitlab_sharded()["mxspec-shard"]
    line = next(line for line in gitlab["script"] if "--mx-shard" in line)
    return {"github": (numbers, step.replace("${{ strategy.job-total }}", str(len(numbers)))
                       .replace("${{ matrix.shard }}", "$K")),
            "gitlab": ([str(k) for k in range(1, gitlab["parallel"] + 1)],
                       line.replace("${CI_NODE_TOTAL}", str(gitlab["parallel"])).replace("${CI_NODE_INDEX}", "$K"))}


@pytest.mark.parametrize("forge_name", ["github", "gitlab"])
def test_the_matrix_shards_cover_both_estates_and_merge(tmp_path, forge_name):
    """Each runner's command (collecting only: no host is contacted) writes its shard's file; merged, they cover all."""
    numbers, command = shard_lines()[forge_name]
    assert len(numbers) == 3 and "--mx-results=results/shard-$K.json" in command and "|| [ $? -eq 1 ]" in command
    command = command.replace("-m pytest", "-m pytest --collect-only -q").replace("results/", f"{tmp_path}/results/")
    for k in numbers:
        result = run_step(command, PROJECT, {"K": k})
        assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(str(p) for p in (tmp_path / "results").iterdir())
    assert [Path(f).name for f in files] == [f"shard-{k}.json" for k in numbers]
    merged = run_step(f"bin/python -m mxspec.cli report {' '.join(files)} --old old-mx --new new-mx --out "
                      f"{tmp_path}/reports", PROJECT, {})
    assert merged.returncode == 0, merged.stdout + merged.stderr  # every host of both estates is in one shard
    lonely = run_step(f"bin/python -m mxspec.cli report {files[0]} --old old-mx --new new-mx --out {tmp_path}/r",
                      PROJECT, {})
    assert lonely.returncode == 2 and "every shard of the run is needed" in lonely.stderr


def merge_step_github() -> str:
    steps = github_sharded()["report"]["steps"]
    step = next(s for s in steps if s.get("id") == "gate")
    assert step["continue-on-error"] is True and next(s for s in steps if s.get("name") == "Verdict")["if"] == \
        "steps.gate.outcome != 'success'"
    assert next(s for s in steps if "download-artifact" in s.get("uses", ""))["with"]["path"] == "results/"
    return step["run"].removeprefix("bin/install && ")


def checkout_with_shards(tmp_path: Path, count: int = 3) -> tuple[Path, str]:
    """A report job's checkout with the shards' results files downloaded; and the unsharded report's Markdown."""
    from test_shards import shard_files, whole_run

    checkout = tmp_path / "checkout"
    (checkout / "results").mkdir(parents=True)
    data = whole_run()
    shard_files(data, 3, checkout / "results")
    for extra in range(count + 1, 4):
        (checkout / "results" / f"shard-{extra}.json").unlink()
    data.write(tmp_path / "whole.json")
    whole = run_step(f"bin/python -m mxspec.cli report {tmp_path}/whole.json --old old-mx --new new-mx "
                     f"--out {tmp_path}/whole", PROJECT, {})
    assert whole.returncode == 1, whole.stdout + whole.stderr
    return checkout, (tmp_path / "whole" / "readiness.md").read_text()


def test_github_sharded_report_job_merges_the_shards_and_posts_the_unsharded_report(tmp_path, forge):
    checkout, expected = checkout_with_shards(tmp_path)
    merged = run_step(merge_step_github(), checkout, {})
    assert merged.returncode == 1, merged.stdout + merged.stderr  # NO-GO: the Verdict step fails the job
    assert (checkout / "reports" / "readiness.md").read_text() == expected
    command, step_env = github_post_step()
    assert next(s for s in github_sharded()["report"]["steps"] if s.get("name") == "Post the report on the pull "
                "request") == {"name": "Post the report on the pull request", "if": "always()", "env": step_env,
                               "run": command}
    result = run_step(command, checkout, github_env(tmp_path, forge))
    assert result.returncode == 0, result.stdout + result.stderr
    [(_, _, body)] = Forge.posts
    assert body == {"body": expected} and "NO-GO" in expected


def test_gitlab_sharded_report_job_merges_the_shards_and_posts_the_unsharded_report(tmp_path, forge):
    checkout, expected = checkout_with_shards(tmp_path)
    job = gitlab_sharded()["mxspec-gate"]
    assert job["needs"] == ["mxspec-shard"] and job["rules"][0]["when"] == "always"
    script = "\n".join(line for line in job["script"] if line != "bin/install")
    env = {"CI_API_V4_URL": f"{forge}/api/v4", "CI_PROJECT_ID": "17", "CI_MERGE_REQUEST_IID": "5",
           "MXSPEC_API_TOKEN": "gl-token"}
    result = run_step(script, checkout, env)
    assert result.returncode == 1, result.stdout + result.stderr
    [(path, _, body)] = Forge.posts
    assert path == "/api/v4/projects/17/merge_requests/5/notes" and body == {"body": expected}


def test_a_shard_that_sent_no_results_is_said_on_the_pull_request(tmp_path, forge):
    checkout, _ = checkout_with_shards(tmp_path, count=2)
    merged = run_step(merge_step_github(), checkout, {})
    assert merged.returncode == 2 and "every shard of the run is needed" in merged.stderr
    command, _ = github_post_step()
    result = run_step(command, checkout, github_env(tmp_path, forge))
    assert result.returncode == 1
    [(_, _, body)] = Forge.posts
    assert "no report" in body["body"]


# The pre-merge templates: for an operator's repository (a playbook, its inventory, features, the old
# estate's results), with mxspec installed from a package into .venv, not a copy of mxspec.
PREMERGE_REPORT = "## Pre-merge check: **NO-GO**\n\nThe converge failed.\n"


def _premerge_checkout(tmp_path: Path) -> Path:
    (tmp_path / "reports" / "premerge").mkdir(parents=True)
    (tmp_path / "reports" / "premerge" / "premerge.md").write_text(PREMERGE_REPORT)
    return tmp_path


def _premerge_lines() -> tuple[list[dict], list[str]]:
    github = yaml.safe_load((TEMPLATES / "github-actions-premerge.yml").read_text())["jobs"]["premerge"]["steps"]
    gitlab = yaml.safe_load((TEMPLATES / "gitlab-ci-premerge.yml").read_text())["mxspec-premerge"]["script"]
    return github, gitlab


@pytest.mark.parametrize("forge_name", ["github", "gitlab"])
def test_the_premerge_templates_run_premerge_with_the_base_branch_and_a_command_line_mxspec_accepts(forge_name):
    from mxspec.cli import _parser

    github, gitlab = _premerge_lines()
    line = (next(s["run"] for s in github if "premerge" in s.get("run", "")) if forge_name == "github"
            else next(line for line in gitlab if "mxspec premerge" in line))
    words = line.replace("status=0;", "").replace("|| status=$?", "").split()
    assert words[0] == ".venv/bin/mxspec"
    args = _parser().parse_args([word.strip('"') for word in words[1:]])
    assert (args.command, str(args.playbook), str(args.inventory), args.estate) == ("premerge", "site.yml", "inventory", "new-mx")
    assert (str(args.base_playbook), str(args.base_inventory)) == (".base/site.yml", ".base/inventory")
    assert str(args.old_results) == "old-results.json" and str(args.out) == "reports/premerge"
    assert args.vault_password_file is not None


def test_github_premerge_posts_the_verdict_on_the_pull_request(tmp_path, forge):
    github, _ = _premerge_lines()
    step = next(s for s in github if s.get("name") == "Post the verdict on the pull request")
    command = step["run"].replace(".venv/bin/mxspec", "bin/python -m mxspec.cli")
    result = run_step(command, _premerge_checkout(tmp_path), github_env(tmp_path, forge))
    assert result.returncode == 0, result.stdout + result.stderr
    [(path, _, body)] = Forge.posts
    assert path == "/repos/acme/mail-config/issues/42/comments" and body == {"body": PREMERGE_REPORT}


def test_gitlab_premerge_posts_the_verdict_on_the_merge_request(tmp_path, forge):
    _, gitlab = _premerge_lines()
    line = next(line for line in gitlab if "comment gitlab" in line).replace(".venv/bin/mxspec", "bin/python -m mxspec.cli")
    env = {"CI_API_V4_URL": f"{forge}/api/v4", "CI_PROJECT_ID": "17", "CI_MERGE_REQUEST_IID": "5",
           "MXSPEC_API_TOKEN": "gl-token"}
    result = run_step(line, _premerge_checkout(tmp_path), env)
    assert result.returncode == 0, result.stdout + result.stderr
    [(path, _, body)] = Forge.posts
    assert path == "/api/v4/projects/17/merge_requests/5/notes" and body == {"body": PREMERGE_REPORT}
