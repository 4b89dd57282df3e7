"""Readiness verdicts from results, without hosts: every status, waivers, expiry, and the command."""

import datetime
import json
import re

import pytest

from conftest import output, run_mxspec
from mxspec.report import readiness, render
from mxspec.report.results import Result, Results

TODAY = datetime.date(2026, 11, 22)


def results(old: dict, new: dict, new_roles=("inbound-mx",)) -> Results:
    """old/new: {(scenario, host): outcome}; every host has role inbound-mx unless said."""
    data = Results({"old-mx": ["inbound-mx"], "new-mx": list(new_roles)},
                   {"old-mx": {"old-1": ["inbound-mx"]},
                    "new-mx": {"new-1": list(new_roles), "new-2": list(new_roles)}})
    for estate, outcomes in (("old-mx", old), ("new-mx", new)):
        for (scenario, host), outcome in outcomes.items():
            data.results.append(Result(estate, host, [new_roles[0] if estate == "new-mx" else "inbound-mx"],
                                       "Inbound MX", scenario, "", outcome,
                                       "it failed" if outcome == "failed" else ""))
    return data


def status_of(verdict, scenario):
    return next(item for item in verdict.items if item.scenario == scenario)


@pytest.mark.parametrize("old, new, status, blocks", [
    ("passed", ["passed", "passed"], "ready", False),
    ("passed", ["passed", "failed"], "regression", True),
    ("failed", ["passed", "passed"], "improvement", False),
    ("failed", ["failed", "passed"], "broken in both", True),
    ("passed", ["skipped", "skipped"], "not shown on new", True),
    ("skipped", ["passed", "passed"], "new only", False),
])
def test_each_comparison_has_its_status(old, new, status, blocks):
    data = results({("s", "old-1"): old}, {("s", "new-1"): new[0], ("s", "new-2"): new[1]})
    verdict = readiness.compare(data, "old-mx", "new-mx", [], TODAY)
    item = status_of(verdict, "s")
    assert (item.status, item.blocks, verdict.go) == (status, blocks, not blocks)


def test_regression_names_the_failing_host():
    data = results({("s", "old-1"): "passed"}, {("s", "new-1"): "passed", ("s", "new-2"): "failed"})
    item = status_of(readiness.compare(data, "old-mx", "new-mx", [], TODAY), "s")
    assert item.note == "fails on new-2"


def test_a_side_that_did_not_run_says_why():
    data = results({("s", "old-1"): "skipped"}, {("s", "new-1"): "skipped", ("s", "new-2"): "skipped"})
    for result in data.results:
        result.message = "Skipped: not run: disrupts a service; run with --mx-disruptive"
    item = status_of(readiness.compare(data, "old-mx", "new-mx", [], TODAY), "s")
    assert item.note == "skipped on both sides (disrupts a service; run with --mx-disruptive)"
    assert "title='disrupts a service; run with --mx-disruptive'" in render.to_html(
        readiness.compare(data, "old-mx", "new-mx", [], TODAY), data)


def test_role_of_the_old_estate_missing_in_the_new_blocks():
    data = results({("s", "old-1"): "passed"}, {("s", "new-1"): "passed"}, new_roles=("smtp-router",))
    verdict = readiness.compare(data, "old-mx", "new-mx", [], TODAY)
    assert status_of(verdict, "role inbound-mx").status == "role missing"
    assert verdict.verdict == "NO-GO"


def test_waiver_turns_a_regression_into_waived_until_it_expires(tmp_path):
    data = results({("s", "old-1"): "passed"}, {("s", "new-1"): "passed", ("s", "new-2"): "failed"})
    waivers = tmp_path / "waivers.yml"
    waivers.write_text("waivers:\n  - scenario: s\n    host: new-2\n    reason: decommissioned next week\n"
                       "    owner: mail-team\n    expires: 2026-12-01\n")
    loaded = readiness.load_waivers(waivers)
    waived = readiness.compare(data, "old-mx", "new-mx", loaded, TODAY)
    assert status_of(waived, "s").status == "waived" and waived.go
    assert "decommissioned next week" in status_of(waived, "s").note
    expired = readiness.compare(data, "old-mx", "new-mx", loaded, datetime.date(2026, 12, 2))
    item = status_of(expired, "s")
    assert item.status == "regression" and not expired.go
    assert "waiver expired on 2026-12-01" in item.note


def test_waiver_for_another_host_does_not_apply(tmp_path):
    data = results({("s", "old-1"): "passed"}, {("s", "new-1"): "passed", ("s", "new-2"): "failed"})
    waiver = readiness.Waiver("s", "r", "o", datetime.date(2030, 1, 1), host="new-1")
    assert not readiness.compare(data, "old-mx", "new-mx", [waiver], TODAY).go


@pytest.mark.parametrize("text, fragment", [
    ("- scenario: s\n", "a waivers file holds `waivers:`"),
    ("waivers:\n  - scenario: s\n    reason: r\n", "waiver 1 lacks owner, expires"),
    ("waivers:\n  - {scenario: s, reason: r, owner: o, expires: soon}\n", "waiver expiry 'soon' is not a date"),
])
def test_bad_waivers_file(tmp_path, text, fragment):
    path = tmp_path / "w.yml"
    path.write_text(text)
    with pytest.raises(Exception) as error:
        readiness.load_waivers(path)
    assert fragment in str(error.value)


def test_report_command_combines_two_runs(tmp_path):
    data = results({("s", "old-1"): "passed"}, {("s", "new-1"): "passed", ("s", "new-2"): "failed"})
    old, new = Results({"old-mx": data.estates["old-mx"]}, {"old-mx": data.hosts["old-mx"]}), \
        Results({"new-mx": data.estates["new-mx"]}, {"new-mx": data.hosts["new-mx"]})
    old.results = [r for r in data.results if r.estate == "old-mx"]
    new.results = [r for r in data.results if r.estate == "new-mx"]
    old.write(tmp_path / "old.json")
    new.write(tmp_path / "new.json")
    result = run_mxspec("report", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--old", "old-mx",
                        "--new", "new-mx", "--out", str(tmp_path / "out"))
    assert result.returncode == 1, output(result)
    assert "Migration readiness: **NO-GO**" in result.stdout
    assert json.loads((tmp_path / "out/readiness.json").read_text())["verdict"] == "NO-GO"
    assert (tmp_path / "out/readiness.html").read_text().count("class='cell failed") == 1


def test_report_command_bad_input_exits_2(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    result = run_mxspec("report", str(tmp_path / "x.json"), "--old", "a", "--new", "b")
    assert result.returncode == 2
    assert "not an mxspec results file" in result.stderr
    missing = run_mxspec("report", str(tmp_path / "nope.json"), "--old", "a", "--new", "b")
    assert missing.returncode == 2 and "no such results file" in missing.stderr


def test_markdown_lists_blocking_items_first():
    data = results({("a", "old-1"): "failed", ("b", "old-1"): "passed"},
                   {("a", "new-1"): "passed", ("a", "new-2"): "passed", ("b", "new-1"): "failed", ("b", "new-2"): "passed"})
    text = render.to_markdown(readiness.compare(data, "old-mx", "new-mx", [], TODAY))
    rows = [line for line in text.splitlines() if line.startswith("| inbound-mx")]
    assert rows[0].startswith("| inbound-mx | b | 🛑 regression") and "improvement" in rows[1]


# The estate's DNS: five scenarios once per estate, passing on both (the other @estate scenarios are
# not applicable to the old estate: the hosts of a role compared, on its single hosts; IPv6, MTA-STS and
# TLS-RPT, which it does not declare; the canary's, which judge a canary result only with --mx-canary).
DNS_SCENARIOS = ("-m", "estate and not canary", "-k", "not configured_alike and not mtasts and not tlsrpt and not ipv6")


def test_report_from_a_distributed_run_matches_a_serial_one(lab, tmp_path):
    """Results ride in user_properties, which pytest-xdist carries back from its workers."""
    from conftest import run_mxspec_pytest

    verdicts = {}
    for name, extra in (("serial", ("--mx-parallel=1",)), ("xdist", ())):  # distributed by default
        result = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-report={tmp_path / name}", *DNS_SCENARIOS,
                                   "-p", "no:cacheprovider", *extra)
        assert result.returncode == 0, output(result)
        assert re.search(r"^\[mxspec\] [12]/2 done  old-mx: 5 scenarios, 0 failed", output(result), re.M), \
            output(result)  # progress per target
        data = json.loads((tmp_path / name / "readiness.json").read_text())
        verdicts[name] = (data["verdict"], data["counts"], sorted((b["scenario"], b["status"]) for b in data["behaviours"]))
    assert verdicts["serial"] == verdicts["xdist"]
    assert verdicts["serial"][1] == {"ready": 5}


def test_junit_and_cucumber_reports_keep_working_beside_the_readiness_report(lab, tmp_path):
    import xml.etree.ElementTree as ElementTree

    from conftest import run_mxspec_pytest

    result = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-report={tmp_path / 'report'}", *DNS_SCENARIOS,
                               f"--junitxml={tmp_path / 'junit.xml'}", f"--cucumberjson={tmp_path / 'cucumber.json'}",
                               "-p", "no:cacheprovider")
    assert result.returncode == 0, output(result)
    cases = ElementTree.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert len(properties) == 10
    assert {(p["mx_estate"], p["mx_target"]) for p in properties} == {("old-mx", "old-mx"), ("new-mx", "new-mx")}
    features = json.loads((tmp_path / "cucumber.json").read_text())
    scenarios = [element for feature in features for element in feature["elements"]]
    assert len(scenarios) == 10
    assert all(step["result"]["status"] == "passed" for s in scenarios for step in s["steps"])


def test_a_distributed_run_over_three_shards_merged_by_mxspec_report_equals_the_unsharded_run(lab, tmp_path):
    """Issue 15's 'done when': the hosts of both estates over 3 runners, merged, give the one run's report."""
    from conftest import run_mxspec_pytest

    whole = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-report={tmp_path / 'whole'}", "-p", "no:cacheprovider")
    assert whole.returncode in (0, 1) and "Traceback" not in output(whole), output(whole)
    files = []
    for k in (1, 2, 3):
        files.append(str(tmp_path / f"shard-{k}.json"))
        shard = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-shard={k}/3", f"--mx-results={files[-1]}",
                                  "-p", "no:cacheprovider")
        assert shard.returncode in (0, 1) and "deselected" in output(shard), output(shard)
    merged = run_mxspec("report", *files, "--old", "old-mx", "--new", "new-mx", "--out", str(tmp_path / "merged"))
    assert merged.returncode == whole.returncode, output(merged)

    def behaviours(name):
        data = json.loads((tmp_path / name / "readiness.json").read_text())
        return data["verdict"], data["counts"], [(b["role"], b["scenario"], b["example"], b["status"], b["old"],
                                                  b["new"]) for b in data["behaviours"]]

    assert behaviours("merged") == behaviours("whole")
    assert behaviours("whole")[0] == "GO"
