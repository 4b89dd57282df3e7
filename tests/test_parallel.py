"""Hosts in parallel by default (--mx-parallel): how many workers, each host on one or in pieces, the same results,
one progress line per host.

No lab: the hosts are this machine (`ansible_connection: local`), checked with commands that pass or fail at once.
"""

import json
import os
import re
import textwrap

import pytest

from conftest import output, run_mxspec_pytest
from mxspec import MxspecError
from mxspec.bdd import parallel

CPUS = len(os.sched_getaffinity(0))

FEATURE = """\
    Feature: Local checks

      Scenario: The host's own check is quiet
        Then "{{ check_command }}" reports no problems

      Scenario: True is quiet
        Then "true" reports no problems

      Scenario Outline: Commands are quiet
        Then "<command>" reports no problems

        Examples:
          | command   |
          | true      |
          | sleep 0.2 |

      @disruptive
      Scenario: Opt-in, so skipped
        Then "true" reports no problems
    """

HOSTS = {"old": {"old-1": "true"}, "new": {"new-1": "true", "new-2": "false"}}  # host -> its check_command
SCENARIOS = 5  # per host; the estates themselves have none here


@pytest.fixture
def project(tmp_path):
    """An operator's folder: the feature bound to pytest, and two estates of local hosts."""
    (tmp_path / "test_bind.py").write_text("from pytest_bdd import scenarios\n\nscenarios('.')\n")
    (tmp_path / "checks.feature").write_text(textwrap.dedent(FEATURE))
    (tmp_path / "inventories").mkdir()
    for estate, hosts in HOSTS.items():
        lines = [f"        {host}: {{ansible_host: localhost, ansible_connection: local, check_command: '{command}'}}"
                 for host, command in hosts.items()]
        (tmp_path / "inventories" / f"{estate}.yml").write_text(
            "all:\n  children:\n    inbound-mx:\n      hosts:\n" + "\n".join(lines) + "\n")
    return tmp_path


def run(project, *args):
    return run_mxspec_pytest("-p", "no:cacheprovider", "--hosts=old,new", *args, cwd=project, timeout=300)


def workers_started(text: str) -> int:
    """How many pytest-xdist workers a run started (its `created: N/N workers` line), 0 for none."""
    match = re.search(r"^created: (\d+)/\d+ workers?$", text, re.M)
    return int(match[1]) if match else 0


# How many hosts at once

@pytest.mark.parametrize("requested, hosts, cpus, expected", [
    (None, 5, 2, 3),  # one more than the CPUs...
    (None, 3, 8, 3),  # ...never more than the hosts
    (None, 1, 8, 1),  # one host: serial
    (None, 0, 8, 1),  # no estate selected (the project's own tests): serial
    ("1", 5, 8, 1),
    ("4", 5, 2, 4),  # asked for: more than the CPUs (hosts mostly wait on the network)...
    ("16", 5, 2, 5),  # ...but not more than the hosts
])
def test_workers_default_to_one_more_than_the_cpus_and_never_exceed_the_hosts(requested, hosts, cpus, expected):
    assert parallel.workers(requested, hosts, cpus) == expected


@pytest.mark.parametrize("value, fragment", [
    ("0", "fewer than one host at a time"),
    ("-2", "fewer than one host at a time"),
    ("x", "not a whole number"),
    ("2.5", "not a whole number"),
    ("", "not a whole number"),
])
def test_bad_parallel_values_are_named(value, fragment):
    with pytest.raises(MxspecError) as error:
        parallel.workers(value, 5, 2)
    assert str(error.value) == (f"--mx-parallel={value}: {fragment}; expected N, how many hosts to check at once: "
                                "1 or more (1: one after another, no workers)")


def test_a_bad_value_stops_the_run_with_one_line(project):
    result = run(project, "--mx-parallel=0")
    assert result.returncode == 4 and "Traceback" not in output(result), output(result)
    assert "ERROR: --mx-parallel=0: fewer than one host at a time; expected N" in result.stderr
    assert not workers_started(output(result))


@pytest.mark.parametrize("args, message", [
    (("--mx-parallel=2", "-n", "2"), "--mx-parallel=2 and -n 2 both say how to distribute the run: give one"),
    (("--mx-parallel=2", "--dist", "load"), "--mx-parallel=2 and --dist load both say how to distribute the run"),
    (("--mx-parallel=2", "-p", "no:xdist"), "--mx-parallel=2 needs pytest-xdist, which -p no:xdist turned off"),
    (("--mx-parallel=2", "--cucumberjson=c.json"), "--mx-parallel=2 with --cucumberjson: pytest-bdd writes it from a "
                                                   "serial run only (under pytest-xdist it writes []); leave --mx-parallel out"),
])
def test_parallel_and_the_operators_own_distribution_are_not_both_given(project, args, message):
    result = run(project, *args)
    assert result.returncode == 4 and "Traceback" not in output(result), output(result)
    assert message in result.stderr, output(result)


@pytest.mark.parametrize("name, ids, expected", [
    ("plain", ["f.py::test_a[new-mx-in-1]"], "new-mx-in-1"),
    ("estate", ["f.py::test_a[new-mx]"], "new-mx"),  # not a host whose name starts so
    ("example row", ["f.py::test_a[new-mx-in-1-alpha.test]"], "new-mx-in-1"),
    ("xdist group suffix", ["f.py::test_a[new-mx-in-1]@new-mx-in-1"], "new-mx-in-1"),
    ("another test", ["f.py::test_b", "f.py::test_c[other]"], None),
])
def test_a_test_id_names_its_target(name, ids, expected):
    names = sorted(["new-mx", "new-mx-in-1", "new-mx-in-2", "old-mx"], key=len, reverse=True)
    assert {parallel.target_in_id(nodeid, names) for nodeid in ids} == {expected}


# Runs

def test_a_run_over_several_hosts_is_distributed_by_default_each_host_on_one_worker(project):
    result = run(project, "-v")
    text = output(result)
    assert result.returncode == 1, text
    assert workers_started(text) == min(CPUS + 1, 3), text  # 3 hosts; the 2 estates' scenarios follow on them
    names = ["old-1", "new-1", "new-2", "old", "new"]
    hosts_on = {}  # host -> the workers that ran its scenarios
    for worker, nodeid in re.findall(r"^\[(gw\d+)\] .*(?:PASSED|FAILED|SKIPPED) (test_bind\.py::.*\])", text, re.M):
        hosts_on.setdefault(parallel.target_in_id(nodeid, names), set()).add(worker)
    assert set(hosts_on) == {"old-1", "new-1", "new-2"} and all(len(w) == 1 for w in hosts_on.values()), hosts_on


def test_parallel_1_and_a_single_host_are_serial(project):
    serial = run(project, "--mx-parallel=1")
    assert serial.returncode == 1 and not workers_started(output(serial)), output(serial)
    assert "collected 15 items" in serial.stdout
    host = run_mxspec_pytest("-p", "no:cacheprovider", "--hosts=old", cwd=project, timeout=300)
    assert host.returncode == 0 and not workers_started(output(host)), output(host)  # one host and its estate
    one = run_mxspec_pytest("-p", "no:cacheprovider", "--hosts=old", "--mx-shard=1/2", cwd=project, timeout=300)
    assert one.returncode == 0 and not workers_started(output(one)), output(one)  # a shard of one target


def test_a_distributed_run_stops_before_any_host_is_contacted_on_bad_input(project):
    """The controller collects too, so the estate contract is checked there, as in a serial run."""
    new = project / "inventories" / "new.yml"
    new.write_text(new.read_text().replace(", check_command: 'false'", ""))
    result = run(project, "--mx-parallel=2")
    text = output(result)
    assert result.returncode == 4 and "Traceback" not in text, text
    assert workers_started(text) == 2 and "no tests ran" in text, text
    assert ("ERROR: the inventory lacks values the features use (no host was contacted):\n"
            f"  checks.feature:4: inventory variable 'check_command' is not set for new-2 ({new}:6)"
            ) in result.stderr, text


def test_a_run_that_changes_or_disrupts_hosts_is_serial_unless_parallel_is_asked_for(project):
    """A change on one host disturbs the hosts that send mail through it: such runs overlap nothing by default."""
    for option in ("--mx-disruptive", "--mx-change"):
        serial = run(project, option)
        assert serial.returncode == 1 and not workers_started(output(serial)), output(serial)
    asked = run(project, "--mx-disruptive", "--mx-parallel=2")
    assert asked.returncode == 1 and workers_started(output(asked)) == 2, output(asked)


def test_the_operators_own_distribution_is_kept(project):
    chosen = run(project, "-n", "1", "-v")
    assert workers_started(output(chosen)) == 1, output(chosen)
    off = run(project, "-p", "no:xdist")
    assert off.returncode == 1 and not workers_started(output(off)), output(off)


def test_a_run_without_estates_is_untouched(tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    result = run_mxspec_pytest("-p", "no:cacheprovider", cwd=tmp_path)
    assert result.returncode == 0 and not workers_started(output(result)), output(result)
    assert re.search(r"^test_plain\.py \.\. +\[100%\]$", result.stdout, re.M), result.stdout  # pytest's own dots


def comparable(path) -> dict:
    """A results file without what differs between any two runs: when it was written, how long things took."""
    data = json.loads(path.read_text())
    del data["created"]
    for result in data["results"]:
        del result["seconds"]
        for key in ("message", "evidence"):
            result[key] = re.sub(r"\d+ ms\b", "N ms", result[key])
    return data


def test_a_parallel_run_writes_the_serial_runs_results_and_report(project):
    serial = run(project, "--mx-parallel=1", "--mx-results=serial.json", "--mx-report=serial-report")
    parallel_run = run(project, "--mx-parallel=2", "--mx-results=parallel.json", "--mx-report=parallel-report")
    assert (serial.returncode, parallel_run.returncode) == (1, 1), output(serial) + output(parallel_run)
    assert workers_started(output(parallel_run)) == 2 and not workers_started(output(serial))
    expected = comparable(project / "serial.json")
    assert comparable(project / "parallel.json") == expected
    assert [r["target"] for r in expected["results"]] == [h for hosts in HOSTS.values() for h in hosts
                                                          for _ in range(SCENARIOS)]  # inventory order
    assert {r["outcome"] for r in expected["results"]} == {"passed", "failed", "skipped"}
    failed = next(r for r in expected["results"] if r["outcome"] == "failed")
    assert failed["message"].startswith('checks.feature:4: Then "{{ check_command }}" reports no problems\n'
                                        "host new-2: `false` exited 1"), failed["message"]
    for kind in ("json", "md", "html"):
        report = [re.sub(r"\d+ ms\b", "N ms", (project / f"{side}-report" / f"readiness.{kind}").read_text())
                  for side in ("serial", "parallel")]
        assert report[0] == report[1], kind


@pytest.mark.parametrize("args", [("--mx-parallel=1",), ("--mx-parallel=2",)], ids=["serial", "parallel"])
def test_progress_is_one_line_per_host_and_nothing_else(project, args):
    result = run(project, *args)
    assert result.returncode == 1, output(result)
    lines = result.stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if re.fullmatch(r"collected \d+ items|\d+ workers \[\d+ items\]", line)) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("====") and i > start)
    body = [line for line in lines[start:end] if line.strip() and not re.fullmatch(r" *\[100%\]", line)]
    progress = [re.fullmatch(r"\[mxspec\] (\d)/3 done  ([\w-]+): 5 scenarios, (\d) failed, 1 skipped", line)
                for line in body]
    assert all(progress), "\n".join(lines)  # no dots, letters or file names between them
    assert [int(match[1]) for match in progress] == [1, 2, 3]
    assert {match[2]: int(match[3]) for match in progress} == {"old-1": 0, "new-1": 0, "new-2": 1}


def test_verbose_keeps_pytests_line_per_test(project):
    result = run(project, "--mx-parallel=1", "-v")
    assert re.search(r"^test_bind\.py::test_true_is_quiet\[new-1\] PASSED", result.stdout, re.M), result.stdout
    assert re.search(r"^test_bind\.py::test_optin_so_skipped\[old-1\] SKIPPED", result.stdout, re.M), result.stdout
    assert re.search(r"^\[mxspec\] 3/3 done  new-2: 5 scenarios, 1 failed, 1 skipped$", result.stdout, re.M)


class Worker:
    """A pytest-xdist worker as its scheduler sees it: the test indices it was sent."""

    def __init__(self, name):
        self.gateway = type("Gateway", (), {"id": name})
        self.sent: list[list[int]] = []
        self.shutting_down = False

    def send_runtest_some(self, indices):
        self.sent.append(indices)

    def shutdown(self):
        self.shutting_down = True


def test_the_next_host_goes_to_a_worker_only_once_it_has_run_out_of_work():
    """A worker keeps the last test it was given until it knows the next one: one test pending is an idle
    worker. pytest-xdist's own schedulers send the next host at two pending, to a worker still busy."""
    ids = [f"features/test_features.py::test_{n}[{host}]" for host, count in (("h-1", 4), ("h-2", 4), ("h-3", 3))
           for n in range(count)]
    option = type("Option", (), {"tx": ["2*popen"], "numprocesses": None, "dist": "loadgroup", "loadscopereorder": True})
    config = type("Config", (), {"option": option, "getvalue": lambda self, name: getattr(option, name)})()
    scheduling = parallel.HostScheduling(config, None, ["h-1", "h-2", "h-3"], set())
    first, second = Worker("gw0"), Worker("gw1")
    for worker in (first, second):
        scheduling.add_node(worker)
        scheduling.add_node_collection(worker, ids)
    scheduling.schedule()
    assert [len(sent) for sent in first.sent + second.sent] == [4, 4]  # one host each, the third waits
    for index in first.sent[0][:2]:
        scheduling.mark_test_complete(first, index)
    assert len(first.sent) == 1, "two tests still to run: the worker is busy, the third host waits"
    scheduling.mark_test_complete(first, first.sent[0][2])
    assert first.sent[1] == [8, 9, 10], "one test left, held until the next is known: the third host goes there"
    assert second.sent == [second.sent[0]] and not second.shutting_down


# A host in pieces

def test_a_host_goes_out_in_pieces_of_consecutive_scenarios_at_most_a_quarter_of_a_workers_share():
    gate = {"old-1": [(f"t{n}[old-1]", n % 5 != 4) for n in range(40)],  # 32 run, 8 skipped
            "in-1": [(f"t{n}[in-1]", True) for n in range(20)], "out-1": [(f"t{n}[out-1]", True) for n in range(15)]}
    placed = parallel.pieces(gate, running=32 + 20 + 15 + 5, workers=3)  # 5 more: the estates'
    old = [placed[test] for test, _ in gate["old-1"]]
    assert old == sorted(old) and len(set(old)) == 4, old  # 24 a worker, 6 a piece at most: 4 of MIN_PIECE
    assert [sum(runs for (test, runs) in gate["old-1"] if placed[test] == piece) for piece in sorted(set(old))] == [8] * 4
    assert {placed[test] for test, _ in gate["in-1"]} == {"in-1 (piece 1 of 2)", "in-1 (piece 2 of 2)"}
    assert not any(test in placed for test, _ in gate["out-1"])  # fewer than twice MIN_PIECE: whole


def test_pieces_are_fewer_as_the_run_grows():
    host = {"a-1": [(f"t{n}[a-1]", True) for n in range(40)]}
    assert len(set(parallel.pieces(host, running=40, workers=1).values())) == 4  # 10 a piece at most
    assert len(set(parallel.pieces(host, running=400, workers=3).values())) == 2  # 33 a piece at most
    assert parallel.pieces(host, running=4000, workers=3) == {}  # a small share of the run: whole


def test_the_scheduler_sends_a_hosts_pieces_to_different_workers_and_estates_whole():
    ids = [f"features/test_features.py::test_{n}[{host}]" for host, count in (("big-1", 16), ("est", 2))
           for n in range(count)]
    placed = {parallel.scenario_id(test): f"big-1 (piece {1 + n // 8} of 2)" for n, test in enumerate(ids[:16])}
    option = type("Option", (), {"tx": ["2*popen"], "numprocesses": None, "dist": "loadgroup", "loadscopereorder": True})
    config = type("Config", (), {"option": option, "getvalue": lambda self, name: getattr(option, name)})()
    scheduling = parallel.HostScheduling(config, None, ["big-1", "est"], {"est"}, placed)
    first, second = Worker("gw0"), Worker("gw1")
    for worker in (first, second):
        scheduling.add_node(worker)
        scheduling.add_node_collection(worker, [f"{test}@big-1" for test in ids])  # loadgroup's suffix ignored
    scheduling.schedule()
    assert (first.sent, second.sent) == ([list(range(8))], [list(range(8, 16))])
    for index in range(7):
        scheduling.mark_test_complete(first, index)
    assert first.sent[1] == [16, 17], "the estate's scenarios go out together, after every host's"


OPT_IN_MANY = FEATURE + """
      @smtp_router
      Scenario Outline: Many quiet commands
        Then "<command>" reports no problems

        Examples:
          | command |
""" + "".join(f"          | sleep 0.0{n} |\n" for n in range(16))


@pytest.mark.parametrize("args, pieces", [(["--mx-parallel=2"], True), (["--mx-parallel=2", "--mx-disruptive"], False),
                                          (["-n", "2", "--dist", "loadgroup"], False)],
                         ids=["read-only", "disruptive", "operators-own-distribution"])
def test_a_host_goes_out_in_pieces_only_when_none_of_its_scenarios_changes_it(project, args, pieces):
    """old-1, a router too, runs 20 scenarios of the run's 28 (21 of 31 with the disruptive ones): it goes out
    in two pieces, first, one to each worker, unless a scenario that disrupts it runs, or the operator chose
    the distribution (whose workers may share neither the host's connection nor its first contact)."""
    (project / "checks.feature").write_text(textwrap.dedent(OPT_IN_MANY))
    old = project / "inventories" / "old.yml"
    old.write_text(old.read_text() + "    smtp-router:\n      hosts:\n        old-1:\n")
    result = run(project, "-v", "--mx-results=parallel.json", *args)
    text = output(result)
    assert result.returncode == 1 and workers_started(text) == 2, text
    disrupts = "--mx-disruptive" in args
    serial = run(project, "--mx-parallel=1", "--mx-results=serial.json", *(["--mx-disruptive"] if disrupts else []))
    assert serial.returncode == 1, output(serial)
    assert comparable(project / "parallel.json") == comparable(project / "serial.json")  # in the same order
    workers = {worker for worker, nodeid in re.findall(r"^\[(gw\d+)\] .*(?:PASSED|FAILED|SKIPPED) (test_bind\.py::.*\])",
                                                     text, re.M) if parallel.target_in_id(nodeid, ["old-1"])}
    assert len(workers) == (2 if pieces else 1), text
    assert re.search(r"^\[mxspec\] \d/3 done  old-1: 21 scenarios, 0 failed" + ("" if disrupts else ", 1 skipped") + "$",
                     result.stdout, re.M), result.stdout  # one line for the host, whatever its pieces


# Hosts reached ahead of their first command

REACHED = """\
    Feature: Reaching

      Scenario: True is quiet
        Then "true" reports no problems
    """


@pytest.mark.parametrize("bad", [True, False], ids=["undefined-step", "control"])
def test_a_serial_run_stopped_by_bad_input_has_reached_no_host_ahead(tmp_path, bad):
    """Hosts are reached ahead of their first command only once nothing stops the run. The `ssh` the run
    finds first on its PATH notes each channel it is asked to open; the control run, without the
    undefined step, shows that it would see one."""
    opened = tmp_path / "opened"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ssh").write_text(f"#!/bin/sh\ncase \"$*\" in *mxspec-channel*) echo \"$*\" >> {opened};; esac\n"
                                          "echo 'ssh: connect to host far-1 port 22: Connection refused' >&2\nexit 255\n")
    (tmp_path / "bin" / "ssh").chmod(0o755)
    (tmp_path / "test_bind.py").write_text("from pytest_bdd import scenarios\n\nscenarios('.')\n")
    feature = REACHED + ("\n      Scenario: Broken\n        Then this phrase is defined nowhere\n" if bad else "")
    (tmp_path / "reach.feature").write_text(textwrap.dedent(feature))
    (tmp_path / "inventories").mkdir()
    (tmp_path / "inventories" / "far.yml").write_text(
        "all:\n  children:\n    inbound-mx:\n      hosts:\n        far-1: {ansible_host: far-1}\n")
    result = run_mxspec_pytest("-p", "no:cacheprovider", "--hosts=far", "--mx-parallel=1", cwd=tmp_path, timeout=120,
                               env={"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})
    if bad:
        assert result.returncode == 4, output(result)
        assert "features use undefined steps (no host was contacted)" in output(result)
        assert not opened.exists()
    else:
        assert "host far-1 unreachable: ssh: connect to host far-1 port 22: Connection refused" in output(result), \
            output(result)
        assert opened.exists()
