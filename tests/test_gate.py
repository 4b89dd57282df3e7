"""The readiness gate on the lab: a regression on one new host blocks, a waiver lifts it, expiry restores it."""

import json
import re

from conftest import output, run_mxspec, run_mxspec_pytest
from faults import edit, injected

REGRESSION = edit("new-mx-in-2", "/etc/postfix/relay_recipients", "/^bob@beta.test/d",
                  "postmap /etc/postfix/relay_recipients")
SCENARIO = "Mail for the local domains' users and postmaster is accepted"


def waivers(path, expires):
    path.write_text("waivers:\n"
                    f"  - scenario: \"{SCENARIO}\"\n"
                    "    host: new-mx-in-2\n"
                    "    reason: bob moves to the new store in the next change\n"
                    "    owner: mail-team\n"
                    f"    expires: {expires}\n")
    return path


def test_regression_on_one_new_host_is_a_no_go_until_waived(lab, tmp_path):
    report = tmp_path / "report"
    with injected(REGRESSION):
        result = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-report={report}", "-m", "inbound_mx",
                                   "-p", "no:cacheprovider")
    text = output(result)
    assert result.returncode == 1, text
    assert "migration readiness old-mx -> new-mx: NO-GO" in text
    assert f"BLOCKS  inbound-mx: {SCENARIO}: regression (fails on new-mx-in-2)" in text
    assert re.search(r"^\[mxspec\] \d+/\d+ done  new-mx-in-2: \d+ scenarios, [1-9]\d* failed", text, re.M), text  # per host
    verdict = json.loads((report / "readiness.json").read_text())
    assert verdict["verdict"] == "NO-GO"
    blocking = [b for b in verdict["behaviours"] if b["blocks"]]
    assert [(b["scenario"], b["status"]) for b in blocking] == [(SCENARIO, "regression")]
    assert blocking[0]["new"] == {"new-mx-in-1": "passed", "new-mx-in-2": "failed"}
    assert "bob@beta.test: expected 250, got 550 5.1.1" in blocking[0]["failures"]["new-mx-in-2"]
    others = [b for b in verdict["behaviours"] if b["scenario"] != SCENARIO]
    assert others and all(b["status"] in ("ready", "new only", "not run") for b in others)
    assert "regression" in (report / "readiness.md").read_text()

    results = str(report / "results.json")
    waived = run_mxspec("report", results, "--old", "old-mx", "--new", "new-mx", "--out", str(tmp_path / "w"),
                        "--waivers", str(waivers(tmp_path / "future.yml", "2099-01-01")))
    assert waived.returncode == 0, output(waived)
    assert "**GO**" in waived.stdout and "waived until 2099-01-01 by mail-team" in waived.stdout
    expired = run_mxspec("report", results, "--old", "old-mx", "--new", "new-mx", "--out", str(tmp_path / "e"),
                         "--waivers", str(waivers(tmp_path / "past.yml", "2020-01-01")))
    assert expired.returncode == 1, output(expired)
    assert "**NO-GO**" in expired.stdout and "waiver expired on 2020-01-01" in expired.stdout
