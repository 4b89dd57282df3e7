"""`mxspec premerge` on the lab: the example Ansible estate (examples/ansible-estate) converged onto fresh
hosts is GO against the old estate, and each deliberately broken change to it is NO-GO, caught by
the behaviour that should catch it. The hosts are put back to the built-in lab afterwards."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PROJECT, lab_ssh, output, run_mxspec_pytest

EXAMPLE = PROJECT / "examples" / "ansible-estate"
NEW_HOSTS = ["new-mx-in-1", "new-mx-in-2", "new-router-1", "new-router-2", "new-out-1"]
SIZE_LIMIT = ("message_size_limit: 10240000", "message_size_limit: 10485760")  # a setting Postfix reloads


@pytest.fixture(scope="module")
def old_results(lab_up, tmp_path_factory):
    """The old estate's results, recorded once, as an operator records them before the migration."""
    healed = mxspec("lab", "heal")
    assert healed.returncode == 0, output(healed)
    path = tmp_path_factory.mktemp("old") / "old-mx.json"
    recorded = run_mxspec_pytest("--hosts=old-mx", f"--mx-results={path}")
    assert recorded.returncode == 0, output(recorded)
    yield path
    # The next tests expect the built-in new estate: boot its hosts again from lab.yml's roles.
    restored = mxspec("lab", "up")
    assert restored.returncode == 0, output(restored)


def estate(tmp_path: Path, name: str, *edits: tuple[str, str, str]) -> Path:
    """An operator's repository: a copy of the example (links followed: it stands alone) and of the
    features, nothing of mxspec's; with each (file, text, replacement) made."""
    copy = tmp_path / name
    shutil.copytree(EXAMPLE, copy)
    (copy / "features").mkdir()
    for feature in [*(PROJECT / "features").glob("*.feature"), PROJECT / "features" / "test_features.py"]:
        shutil.copy(feature, copy / "features")
    for file, text, replacement in edits:
        path = copy / file
        assert path.read_text().count(text) == 1, f"{file}: {text!r}"
        path.write_text(path.read_text().replace(text, replacement))
    return copy


def mxspec(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mxspec.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200, stdin=subprocess.DEVNULL)


def premerge(old_results: Path, change: Path, out: Path, *more: str):
    """`mxspec premerge` in the operator's repository, as its CI runs it."""
    started = time.monotonic()
    result = mxspec("premerge", "--playbook", "site.yml", "--inventory", "inventory", "--estate", "new-mx",
                    "--old-results", str(old_results), "--vault-password-file", "vault-password", "--out", str(out),
                    *more, cwd=change)
    return result, json.loads((out / "premerge.json").read_text()) if (out / "premerge.json").exists() else {}, \
        time.monotonic() - started


def blocking(verdict: dict) -> str:
    return "\n".join(verdict["reasons"])


def test_the_example_converges_idempotently_reloads_its_changes_and_is_go(old_results, tmp_path):
    """From the base branch's estate to a change of a reloadable setting: the handler reloads Postfix
    (its master process stays), the pick-up applies changes between converges (--changes), GO."""
    base = estate(tmp_path, "base")
    change = estate(tmp_path, "change", ("inventory/group_vars/inbound-mx/mail.yml", *SIZE_LIMIT))
    result, verdict, _ = premerge(old_results, change, tmp_path / "out", "--base-playbook", str(base / "site.yml"),
                                  "--base-inventory", str(base / "inventory"), "--changes")
    assert result.returncode == 0, output(result)
    assert verdict["decision"] == "GO", verdict
    base_run, converge, second = verdict["converges"]
    assert [base_run["label"], converge["label"], second["label"]] == ["base converge", "converge", "second converge"]
    assert sorted(base_run["hosts"]) == sorted(NEW_HOSTS) and second["changed"] == []
    reloads = {o["host"] for o in converge["changed"] if o["task"] == "postfix : Reload Postfix" and o["handler"]}
    assert reloads == {"new-mx-in-1", "new-mx-in-2"}
    for host in ("new-mx-in-1", "new-mx-in-2"):
        running_for = lab_ssh(host, "ps -o etimes= -p $(sed 's/ //g' /var/spool/postfix/pid/master.pid)").stdout
        assert time.time() - int(running_for) < converge["started"], f"{host}: Postfix's master was restarted"
        assert lab_ssh(host, "postconf -h message_size_limit").stdout.strip() == "10485760"
    results = json.loads((tmp_path / "out" / "new-results.json").read_text())["results"]
    passed = {(r["scenario"], r["target"]) for r in results if r["outcome"] == "passed"}
    assert ("Postfix runs the configuration that is on disk", "new-mx-in-1") in passed
    for scenario in ("A new route in the transport map is used without anyone running a command",
                     "A setting Postfix can reload is reloaded and in effect on the wire",
                     "A change of listening addresses restarts Postfix, which then listens as configured"):
        assert (scenario, "new-router-1") in passed, scenario
    page = (tmp_path / "out" / "premerge.md").read_text()
    assert "## Pre-merge check: **GO**" in page and "| second converge | idempotent | 5 | 0 | 0 |" in page
    for written in (tmp_path / "out").iterdir():  # the converge logs and records, the reports
        assert "lab-submission-secret" not in written.read_text(errors="replace"), written


def test_a_handler_that_never_reloads_is_no_go_caught_by_the_running_configuration(old_results, tmp_path):
    base = estate(tmp_path, "base")
    change = estate(tmp_path, "change", ("inventory/group_vars/inbound-mx/mail.yml", *SIZE_LIMIT),
                    ("roles/postfix/handlers/main.yml", "    state: reloaded", "    state: started"))
    result, verdict, _ = premerge(old_results, change, tmp_path / "out", "--base-playbook", str(base / "site.yml"),
                                  "--base-inventory", str(base / "inventory"))
    assert result.returncode == 1, output(result)
    assert verdict["headline"] == "the readiness report of new-mx against old-mx is NO-GO"
    assert ("regression: inbound-mx: Postfix runs the configuration that is on disk (fails on new-mx-in-1, new-mx-in-2)"
            in blocking(verdict)), blocking(verdict)


def test_a_route_removed_is_no_go_caught_by_the_routing_behaviours(old_results, tmp_path):
    change = estate(tmp_path, "change", ("inventory/group_vars/smtp-router/mail.yml",
                                         '  beta.test: "{{ mailstore_route }}"\n', ""))
    result, verdict, _ = premerge(old_results, change, tmp_path / "out")
    assert result.returncode == 1, output(result)
    assert "regression: smtp-router: Each local domain is routed to its next hop" in blocking(verdict), blocking(verdict)


def test_the_milter_not_enabled_is_no_go_caught_by_the_milter_behaviours(old_results, tmp_path):
    change = estate(tmp_path, "change", ("roles/smtp_router/defaults/main.yml",
                                         '  smtpd_milters: "{{ milter_socket }}"\n', ""))
    result, verdict, _ = premerge(old_results, change, tmp_path / "out")
    assert result.returncode == 1, output(result)
    assert ("regression: smtp-router: Postfix hands every message to the milter, and holds mail when it fails"
            in blocking(verdict)), blocking(verdict)
    assert "regression: smtp-router: Routed mail carries the milter's stamp" in blocking(verdict)


def test_a_playbook_that_fails_to_converge_is_no_go_naming_host_and_task(old_results, tmp_path):
    change = estate(tmp_path, "change", ("roles/inbound_mx/defaults/main.yml",
                                         '"{{ message_size_limit }}"', '"{{ message_size_limt }}"'))
    result, verdict, seconds = premerge(old_results, change, tmp_path / "out", "--converge-timeout", "300")
    assert result.returncode == 1, output(result)
    assert verdict["decision"] == "NO-GO" and verdict["headline"] == "the converge failed"
    for host in ("new-mx-in-1", "new-mx-in-2"):
        assert any(reason.startswith(f"{host}: failed at task postfix : main.cf holds the estate's settings and the "
                                     "mail role's (roles/postfix/tasks/main.yml:") and "message_size_limt" in reason
                   for reason in verdict["reasons"]), verdict["reasons"]
    assert verdict["gate"] is None and not (tmp_path / "out" / "new-results.json").exists()
    assert seconds < 300
    page = (tmp_path / "out" / "premerge.md").read_text()
    assert "The behaviours were not checked: the hosts did not converge." in page
