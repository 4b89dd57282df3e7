"""Shards across runners: which hosts a shard checks, and shards' results merged into one report (no host contacted)."""

import datetime
import json
import random
import re

import pytest

from conftest import PROJECT, output, run_mxspec, run_mxspec_pytest
from mxspec import MxspecError
from mxspec.estate import shards
from mxspec.estate.inventory import load_estates
from mxspec.report import readiness, render
from mxspec.report.results import Result, Results, merge, read

HOSTS = [f"mx-{n}" for n in range(1, 24)]


def shares(units, count):
    assigned = shards.assign(units, count)
    return [{u for u, k in assigned.items() if k == index} for index in range(1, count + 1)]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 23, 30])
def test_shards_are_disjoint_covering_and_balanced(count):
    parts = shares(HOSTS, count)
    assert set().union(*parts) == set(HOSTS)
    assert sum(len(p) for p in parts) == len(HOSTS)  # disjoint
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1, sizes


def test_assignment_is_stable_and_independent_of_the_order_hosts_are_listed():
    first = shards.assign(HOSTS, 3)
    for seed in range(5):
        shuffled = HOSTS[:]
        random.Random(seed).shuffle(shuffled)
        assert shards.assign(shuffled, 3) == first
        assert shards.assign(shuffled + shuffled[:4], 3) == first  # a name listed twice is one host
    # Stable across runs and machines: a hash of the name, not Python's salted hash().
    assert shards.assign(["old-mx/old-mx-1", "new-mx/new-mx-in-1", "new-mx/new-mx"], 3) == {
        "new-mx/new-mx": 1, "old-mx/old-mx-1": 2, "new-mx/new-mx-in-1": 3}


def test_a_shard_selects_its_share():
    parts = shares(HOSTS, 3)
    assert [shards.Shard(k, 3).select(reversed(HOSTS)) for k in (1, 2, 3)] == parts
    assert str(shards.parse(" 2 / 3 ")) == "2/3"


@pytest.mark.parametrize("text, fragment", [
    ("0/3", "shard 0 does not exist, shards count from 1 to 3"),
    ("4/3", "shard 4 does not exist, shards count from 1 to 3"),
    ("x", "not a shard"),
    ("1/0", "the number of shards N must be at least 1"),
    ("2", "not a shard"),
    ("-1/3", "not a shard"),
])
def test_bad_shard_is_named(text, fragment):
    with pytest.raises(MxspecError) as error:
        shards.parse(text)
    assert str(error.value).startswith(f"--mx-shard={text}: {fragment}")
    assert "expected K/N" in str(error.value)


def collected(*args):
    result = run_mxspec_pytest("--collect-only", "-q", "-p", "no:cacheprovider", "--hosts=old-mx,new-mx",
                               "features", *args)
    assert result.returncode == 0, output(result)
    return [line for line in result.stdout.splitlines() if line.startswith("features/")]


def test_three_shards_collect_a_partition_of_the_unsharded_collection():
    whole = collected()
    parts = [collected(f"--mx-shard={k}/3") for k in (1, 2, 3)]
    assert len(whole) > 100 and all(parts)
    assert sorted(sum(parts, [])) == sorted(whole)  # every item once: disjoint and covering
    estates = load_estates(PROJECT / "inventories", ["old-mx", "new-mx"], None)
    names = sorted([e.name for e in estates] + [h for e in estates for h in e.hosts], key=len, reverse=True)
    targets = [{next(n for n in names if re.search(rf"\[{re.escape(n)}(-.*)?\]$", i)) for i in p} for p in parts]
    assert not (targets[0] & targets[1] or targets[0] & targets[2] or targets[1] & targets[2])  # hosts never split
    sizes = [len(t) for t in targets]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(names), targets


def test_a_shard_without_a_host_passes_and_says_so(tmp_path):
    result = run_mxspec_pytest("-p", "no:cacheprovider", "--hosts=old-mx,new-mx", "--mx-shard=40/40",
                               f"--mx-results={tmp_path / 'r.json'}", "features")
    assert result.returncode == 0, output(result)
    assert "mxspec: shard 40/40 has no host of the selected estates: nothing to check here" in output(result)
    written = read(tmp_path / "r.json")
    assert (written.shard, written.results, written.covers) == ("40/40", [], {"old-mx": [], "new-mx": []})


def test_a_shard_alone_makes_no_readiness_verdict(tmp_path):
    result = run_mxspec_pytest("--collect-only", "--hosts=old-mx,new-mx", "--mx-shard=1/3",
                               f"--mx-report={tmp_path}", "features")
    assert result.returncode == 4 and "Traceback" not in output(result), output(result)
    assert ("--mx-shard=1/3 with --mx-report: a shard holds part of the estates, and the readiness verdict is "
            "for the whole of them") in output(result)
    assert not list(tmp_path.iterdir())


# A run's results, as one file and as its shards' files (what `--mx-results` writes for each).

ESTATES = {"old-mx": {"old-1": ["inbound-mx", "outbound-mx"]},
           "new-mx": {"new-in-1": ["inbound-mx"], "new-in-2": ["inbound-mx"], "new-out-1": ["outbound-mx"],
                      "new-out-2": ["outbound-mx"]}}
OUTCOMES = {"new-in-2": {"Greeting": "failed"}, "old-1": {"Signed": "failed"}, "new-out-1": {"Queue": "skipped"}}


def whole_run() -> Results:
    data = Results({e: sorted({r for roles in hosts.values() for r in roles}) for e, hosts in ESTATES.items()},
                   ESTATES)
    for estate, hosts in ESTATES.items():
        for host, roles in hosts.items():
            for role in roles:
                for scenario in ("Greeting", "Queue") if role == "inbound-mx" else ("Signed", "Queue"):
                    outcome = OUTCOMES.get(host, {}).get(scenario, "passed")
                    data.results.append(Result(estate, host, [role], role, scenario, "", outcome,
                                               "it failed" if outcome == "failed" else "", "", 0.5))
        data.results.append(Result(estate, estate, ["estate"], "DNS", "MX records", "", "passed"))
    return data


def shard_files(data: Results, count: int, directory) -> list[str]:
    units = [shards.unit(e, t) for e, hosts in data.hosts.items() for t in [*hosts, e]]
    paths = []
    for index in range(1, count + 1):
        mine = shards.Shard(index, count).select(units)
        part = Results(data.estates, data.hosts, [r for r in data.results if shards.unit(r.estate, r.target) in mine],
                       shard=f"{index}/{count}",
                       covers={e: [t for t in [*h, e] if shards.unit(e, t) in mine] for e, h in data.hosts.items()})
        part.write(directory / f"shard-{index}.json")
        paths.append(str(directory / f"shard-{index}.json"))
    return paths


def report(tmp_path, name, *files):
    result = run_mxspec("report", *files, "--old", "old-mx", "--new", "new-mx", "--out", str(tmp_path / name))
    return result, {kind: (tmp_path / name / f"readiness.{kind}").read_text() if result.returncode < 2 else None
                    for kind in ("json", "md", "html")}


def test_three_shards_merged_by_mxspec_report_equal_the_unsharded_report(tmp_path):
    data = whole_run()
    data.write(tmp_path / "whole.json")
    files = shard_files(data, 3, tmp_path)
    assert all(read(f).results for f in files)  # each shard holds some hosts' results
    whole, expected = report(tmp_path, "whole", str(tmp_path / "whole.json"))
    assert whole.returncode == 1, output(whole)  # a regression and a failure in both: NO-GO
    assert json.loads(expected["json"])["verdict"] == "NO-GO"
    for order in ([0, 1, 2], [2, 0, 1]):
        merged, got = report(tmp_path, f"merged-{order[0]}", *[files[i] for i in order])
        assert (merged.returncode, merged.stdout.split("report:")[0]) == (1, whole.stdout.split("report:")[0])
        assert got == expected


def test_runs_split_by_estate_and_by_shard_merge_too(tmp_path):
    data = whole_run()
    data.write(tmp_path / "whole.json")
    old = Results({"old-mx": data.estates["old-mx"]}, {"old-mx": data.hosts["old-mx"]},
                  [r for r in data.results if r.estate == "old-mx"])
    old.write(tmp_path / "old.json")
    new = Results({"new-mx": data.estates["new-mx"]}, {"new-mx": data.hosts["new-mx"]},
                  [r for r in data.results if r.estate == "new-mx"])
    new_shards = shard_files(new, 2, tmp_path)
    _, expected = report(tmp_path, "whole", str(tmp_path / "whole.json"))
    _, got = report(tmp_path, "split", str(tmp_path / "old.json"), *new_shards)
    assert got == expected


def test_a_shard_left_out_is_named_not_reported(tmp_path):
    files = shard_files(whole_run(), 3, tmp_path)
    result, _ = report(tmp_path, "out", files[0], files[2])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.fullmatch(r"mxspec: error: the results files hold part of estate '(old|new)-mx' only: none holds .+ "
                        r"\(shards given: 1/3, 3/3; every shard of the run is needed\)", result.stderr.strip()), \
        result.stderr
    assert not (tmp_path / "out").exists()


def test_a_host_in_two_files_is_refused_naming_both_unless_identical(tmp_path):
    files = shard_files(whole_run(), 3, tmp_path)
    # The same file twice (a retried upload): identical results, merged once.
    assert merge([(f, read(f)) for f in [*files, files[1]]]).results == merge([(f, read(f)) for f in files]).results
    # One host's results in two files that disagree.
    other = read(files[1])
    host = next(t for e, targets in other.covers.items() for t in targets if t != e)
    first = read(files[0])
    first.covers = {e: [*t, host] if host in other.hosts[e] else t for e, t in first.covers.items()}
    first.results += [Result(**{**vars(r), "outcome": "failed"}) for r in other.results if r.target == host]
    first.write(tmp_path / "retry.json")
    result, _ = report(tmp_path, "out", str(tmp_path / "retry.json"), files[1], files[2])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(f"mxspec: error: host '{host}' of estate")
    assert f"has results in both {tmp_path / 'retry.json'} and {files[1]}, and they differ" in result.stderr


def test_two_whole_runs_of_one_estate_are_refused(tmp_path):
    data = whole_run()
    data.write(tmp_path / "a.json")
    data.results[0].outcome = "failed"
    data.write(tmp_path / "b.json")
    result, _ = report(tmp_path, "out", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert result.returncode == 2
    assert f"has results in both {tmp_path / 'a.json'} and {tmp_path / 'b.json'}, and they differ" in result.stderr


def test_shards_of_other_runs_are_refused(tmp_path):
    (tmp_path / "three").mkdir()
    (tmp_path / "two").mkdir()
    three = shard_files(whole_run(), 3, tmp_path / "three")
    two = shard_files(whole_run(), 2, tmp_path / "two")
    result, _ = report(tmp_path, "out", three[0], two[1])
    assert result.returncode == 2
    assert result.stderr.strip() == (f"mxspec: error: results files of differently sharded runs: {three[0]} is shard "
                                     f"1/3, {two[1]} is shard 2/2")
    data = whole_run()
    data.hosts["new-mx"]["new-in-3"] = ["inbound-mx"]  # the inventory changed between the runs
    data.write(tmp_path / "changed.json")
    result, _ = report(tmp_path, "out", three[0], str(tmp_path / "changed.json"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"mxspec: error: estate 'new-mx' has other hosts or roles in {tmp_path / 'changed.json'} than in {three[0]}: "
        "results files to merge come from runs over the same inventory")


def test_the_plugins_shard_files_merge_into_the_unsharded_report(tmp_path):
    """The real run, end to end, with every host unreachable (nothing listens on 127.0.0.1:9, nor on
    port 25 of ::1, where the IPv6 probes go; the estate-wide scenarios, which query the estate's
    DNS, left out): each host's scenarios fail at once, so both sides are 'broken in both' and the
    reports must agree item by item."""
    inventories = tmp_path / "inventories"
    inventories.mkdir()
    for source in (PROJECT / "inventories").glob("*.yml"):
        text = re.sub(r"mxspec_ssh_config: \S+", "ansible_port: 9", source.read_text())
        text = re.sub(r"ansible_host: [\w.-]+", "ansible_host: 127.0.0.1", text).replace("10.213.0.", "192.0.2.")
        # IPv6 probes go to loopback too (nothing listens on its port 25): never off this machine
        text = re.sub(r'ipv6_address: "[^"]+"', 'ipv6_address: "::1"', text)
        (inventories / source.name).write_text(text)
    common = ("-p", "no:cacheprovider", "--hosts=old-mx,new-mx", f"--inventories={inventories}", "-m", "not estate",
              "--mx-connect-timeout=3", "--mx-timeout=3", "features")
    whole = run_mxspec_pytest(*common, f"--mx-report={tmp_path / 'whole'}")
    assert whole.returncode == 1 and "unreachable" in whole.stdout, output(whole)
    files = [str(tmp_path / f"shard-{k}.json") for k in (1, 2, 3)]
    for k, path in enumerate(files, 1):
        shard = run_mxspec_pytest(*common, f"--mx-shard={k}/3", f"--mx-results={path}")
        assert shard.returncode == 1 and "deselected" in shard.stdout, output(shard)
    assert sum(len(read(f).results) for f in files) == len(read(tmp_path / "whole" / "results.json").results) > 100
    merged = run_mxspec("report", *files, "--old", "old-mx", "--new", "new-mx", "--out", str(tmp_path / "merged"))
    assert merged.returncode == 1, output(merged)
    expected = json.loads((tmp_path / "whole" / "readiness.json").read_text())
    assert expected["counts"]["broken in both"] > 30
    assert json.loads((tmp_path / "merged" / "readiness.json").read_text()) == expected
    for kind in ("md", "html"):
        assert (tmp_path / "merged" / f"readiness.{kind}").read_text() == \
            (tmp_path / "whole" / f"readiness.{kind}").read_text()


def test_a_behaviours_hosts_read_in_inventory_order_however_the_results_came():
    data, shuffled = whole_run(), whole_run()
    shuffled.results.reverse()  # e.g. the shard holding the later hosts merged first
    today = datetime.date(2026, 11, 25)
    assert render.to_json(readiness.compare(shuffled, "old-mx", "new-mx", [], today)) == \
        render.to_json(readiness.compare(data, "old-mx", "new-mx", [], today))
