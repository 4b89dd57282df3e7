"""premerge without the lab: a converge read task by task (a real ansible-playbook, on this machine
with the local connection, writing nothing), the verdict, and bad input refused before any host boots."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import output, run_mxspec
from mxspec.core.waiting import poll
from mxspec.premerge import converge, render

SECRET = "s3cret-never-shown"


def _playbook(folder: Path, tasks: str) -> tuple[Path, Path]:
    inventory = folder / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    playbook = folder / "site.yml"
    tasks = textwrap.indent(textwrap.dedent(tasks).lstrip("\n"), "    ")
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + tasks)
    return playbook, inventory


def _converge(folder: Path, tasks: str, label: str = "converge", timeout: float = 120) -> converge.Converge:
    playbook, inventory = _playbook(folder, tasks)
    return converge.run(label, playbook, inventory, ["localhost"], folder / f"{label}.log", timeout, 60)


def test_a_failed_task_is_named_by_host_task_and_line_and_a_no_log_task_keeps_its_secret(tmp_path):
    result = _converge(tmp_path, f"""
        - name: A step that works
          ansible.builtin.command: /bin/true
        - name: A secret that fails
          ansible.builtin.command: /bin/false {SECRET}
          no_log: true
          ignore_errors: true
        - name: A step that fails
          ansible.builtin.command: ls /nonexistent-{time.time_ns()}
    """)
    assert not result.succeeded
    [failure] = result.failures
    assert (failure.host, failure.task, failure.path) == ("localhost", "A step that fails", "site.yml:10")
    assert "No such file or directory" in failure.message
    assert "localhost: failed at task A step that fails (site.yml:10)" in result.problem()
    assert [o.status for o in result.outcomes] == ["changed", "ignored", "failed"]
    recorded = result.log.with_suffix(".jsonl").read_text()
    assert SECRET not in recorded and SECRET not in result.problem() and SECRET not in result.log.read_text()


def test_a_failed_no_log_task_is_named_but_its_message_is_never_written(tmp_path):
    result = _converge(tmp_path, f"""
        - name: A secret that fails
          ansible.builtin.command: ls /nonexistent-{SECRET}
          no_log: true
    """)
    [failure] = result.failures
    assert failure.message == "(no_log: its output is hidden)"
    assert result.problems() == ["localhost: failed at task A secret that fails (site.yml:4): (no_log: its output is hidden)"]
    for written in (result.log, result.log.with_suffix(".jsonl")):
        assert SECRET not in written.read_text(), written


def test_a_failure_a_block_rescues_is_not_a_failed_converge(tmp_path):
    result = _converge(tmp_path, """
        - name: The fast way, or else the slow one
          block:
            - name: Try the fast way
              ansible.builtin.command: /bin/false
          rescue:
            - name: The slow way
              ansible.builtin.command: /bin/true
    """)
    assert result.succeeded, result.problems()
    assert [o.status for o in result.outcomes] == ["failed", "changed"] and result.failures == []


def test_a_host_no_play_runs_on_and_an_unreadable_inventory_fail_the_converge(tmp_path):
    playbook, inventory = _playbook(tmp_path, "- name: Nothing\n  ansible.builtin.command: /bin/true\n")
    inventory.write_text(inventory.read_text() + f"other ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    untouched = converge.run("converge", playbook, inventory, ["localhost", "other"], tmp_path / "c.log", 60, 60)
    assert untouched.problems() == ["other: no play of the playbook ran on it (do its plays target the host's groups?)"]
    unknown = converge.run("converge", playbook, inventory, ["nowhere"], tmp_path / "u.log", 60, 60)
    assert not unknown.succeeded and "nowhere" in unknown.problem(), unknown.problem()
    broken = tmp_path / "broken.yml"
    broken.write_text("all: [unclosed\n")
    unreadable = converge.run("converge", playbook, broken, ["localhost"], tmp_path / "b.log", 60, 60)
    assert not unreadable.succeeded and "broken.yml" in unreadable.problem(), unreadable.problem()


OPERATORS_CALLBACK = """
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "ops_note"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        self._display.display("ops note: the operator's own callback ran")
"""


def test_the_operators_own_callbacks_stay_enabled_beside_mxspecs(tmp_path):
    (tmp_path / "callbacks").mkdir()
    (tmp_path / "callbacks" / "ops_note.py").write_text(OPERATORS_CALLBACK)
    (tmp_path / "ansible.cfg").write_text("[defaults]\ncallback_plugins = ./callbacks\ncallbacks_enabled = ops_note\n")
    result = _converge(tmp_path, """
        - name: A step that works
          ansible.builtin.command: /bin/true
    """)
    assert result.succeeded, result.problems()
    assert "ops note: the operator's own callback ran" in result.log.read_text()
    assert [o.status for o in result.outcomes] == ["changed"]  # and mxspec's record


def test_a_converge_that_does_not_finish_is_stopped_at_its_bound_saying_what_it_was_doing(tmp_path):
    started = time.monotonic()
    result = _converge(tmp_path, """
        - name: A task that hangs
          ansible.builtin.command: sleep 300
    """, timeout=8)
    assert time.monotonic() - started < 30
    assert result.timed_out and not result.succeeded
    assert result.problem() == ("the converge did not finish within 8 s and was stopped "
                                "(it was running: A task that hangs (site.yml:4))")


def test_an_interrupted_converge_stops_ansible_playbook_and_its_tasks(tmp_path):
    """Ctrl-C (or a CI's SIGTERM, which premerge turns into the same) ends the converge's processes too."""
    marker = f"{300 + time.time_ns() % 1000}.5"  # the task's own, unmistakable command line
    playbook, inventory = _playbook(tmp_path, f"- name: A long task\n  ansible.builtin.command: sleep {marker}\n")
    # Ctrl-C's own handler, whatever this run inherited: a job started in the background by a
    # shell without job control has SIGINT ignored, and Python then keeps ignoring it.
    script = (f"import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
              f"from pathlib import Path\nfrom mxspec.premerge import converge\n"
              f"converge.run('converge', Path({str(playbook)!r}), Path({str(inventory)!r}), ['localhost'], "
              f"Path({str(tmp_path / 'c.log')!r}), 600, 600)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def running() -> bool:
        return subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).returncode == 0

    assert poll(60, lambda: True if running() else None), "the task never started"
    proc.send_signal(signal.SIGINT)
    assert "KeyboardInterrupt" in proc.communicate(timeout=60)[0]
    assert poll(15, lambda: True if not running() else None), "the converge's task outlived the interrupt"


def test_a_playbook_that_does_not_parse_names_its_file(tmp_path):
    playbook, inventory = _playbook(tmp_path, "- name: broken\n  ansible.builtin.command: [unclosed\n")
    result = converge.run("converge", playbook, inventory, ["localhost"], tmp_path / "converge.log", 60, 60)
    assert not result.succeeded and not result.outcomes
    assert result.problem() == ("ansible-playbook stopped before or between tasks (exit 4): site.yml:6: "
                                "YAML syntax: did not find expected ',' or ']'. while parsing a flow sequence")


def test_a_second_converge_that_changes_something_is_no_go_naming_the_task(tmp_path):
    tasks = """
        - name: A command that always says it changed something
          ansible.builtin.command: /bin/true
        - name: A command that knows it changes nothing
          ansible.builtin.command: /bin/true
          changed_when: false
    """
    first = _converge(tmp_path, tasks)
    second = _converge(tmp_path, tasks, label=render.SECOND)
    verdict = render.verdict([first, second], None)
    assert verdict.decision == "NO-GO"
    assert verdict.headline == "the playbook is not idempotent: a second converge changed 1 task(s)"
    assert verdict.reasons == ["localhost: A command that always says it changed something (site.yml:4)"]
    page = render.markdown(verdict, [first, second], None)
    assert "| second converge | changed again | 1 | 1 | 0 |" in page
    assert json.loads(json.dumps(render.as_json(verdict, [first, second], None)))["decision"] == "NO-GO"


def test_a_gate_that_is_go_after_an_idempotent_converge_is_go(tmp_path):
    tasks = """
        - name: A command that knows it changes nothing
          ansible.builtin.command: /bin/true
          changed_when: false
    """
    runs = [_converge(tmp_path, tasks), _converge(tmp_path, tasks, label=render.SECOND)]
    gate = {"go": True, "old": "old-mx", "new": "new-mx", "markdown": "## Migration readiness: **GO**\n", "blocking": []}
    verdict = render.verdict(runs, gate)
    assert verdict.go
    page = render.markdown(verdict, runs, gate)
    assert "| second converge | idempotent | 1 | 0 | 0 |" in page
    assert page.rstrip().endswith("## Migration readiness: **GO**")  # the readiness report follows the converges
    assert "markdown" not in render.as_json(verdict, runs, gate)["gate"]


EXAMPLE = ["--playbook", "examples/ansible-estate/site.yml", "--inventory", "examples/ansible-estate/inventory",
           "--estate", "new-mx"]


@pytest.mark.parametrize(("args", "message"), [
    (EXAMPLE + ["--old-results", "/nonexistent/old.json"],
     "old results /nonexistent/old.json: no such file (record it once from the old estate: pytest --hosts=OLD "
     "--mx-results=/nonexistent/old.json)"),
    (["--playbook", "x.yml", "--inventory", "inventories/old-mx.yml", "--estate", "nowhere", "--old-results", "x.json"],
     "estate 'nowhere'"),
    (EXAMPLE + ["--old-results", "{old}", "--base-playbook", "/nonexistent/site.yml"],
     "base playbook /nonexistent/site.yml: no such file"),
    (EXAMPLE + ["--old-results", "{old}", "--base-playbook", "examples"], "base playbook examples: no such file"),
    (["--playbook", "/nonexistent/site.yml", *EXAMPLE[2:], "--old-results", "{old}"],
     "playbook /nonexistent/site.yml: no such file"),
    (EXAMPLE + ["--old-results", "{old}", "--old-estate", "older-mx"],
     "hold no estate older-mx (they hold: old-mx)"),
])
def test_bad_input_is_refused_before_any_host_boots(tmp_path, args, message):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": "mxspec-results/1", "created": "", "estates": {"old-mx": []}, "hosts": {},
                               "results": []}))
    result = run_mxspec("premerge", *[a.replace("{old}", str(old)) for a in args], "--out", str(tmp_path / "out"))
    assert result.returncode == 2, output(result)
    assert message in result.stderr and "Traceback" not in output(result)
    assert "booting" not in result.stdout


@pytest.mark.parametrize(("host", "message"), [
    ("new-router-1: {ansible_host: 192.0.2.25}",
     "new-router-1: ansible_host is 192.0.2.25 ({inv}:5), not the lab host's name or address (10.213.0.31)"),
    ("new-router-1: {ansible_connection: local}", "new-router-1: ansible_connection is local ({inv}:5)"),
    ("new-router-1: {}", "new-router-1: reached by name, which only the lab's ssh_config turns into its address"),
    ("new-router-1: {ansible_host: 10.213.0.31, ansible_ssh_common_args: '-o ProxyJump=ops@bastion.example.net'}",
     "new-router-1: jumps through bastion.example.net ({inv}:5), not a lab host"),
    ("new-router-1: {ansible_host: 10.213.0.31, ansible_ssh_common_args: '-J ops@lab-bastion -o ProxyCommand=nc %h %p'}",
     "new-router-1: a ProxyCommand in its ssh arguments ({inv}:5) cannot be checked to stay inside the lab"),
])
def test_an_inventory_that_would_reach_outside_the_lab_is_refused_before_any_host_boots(tmp_path, host, message):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(f"new-mx:\n  children:\n    smtp-router:\n      hosts:\n        {host}\n")
    result = run_mxspec("premerge", "--playbook", "examples/ansible-estate/site.yml", "--inventory", str(inventory),
                        "--estate", "new-mx", "--old-results", "x.json", "--out", str(tmp_path / "out"))
    assert result.returncode == 2, output(result)
    assert "premerge converges lab hosts only, reached inside the lab; the inventory says otherwise:" in result.stderr
    assert message.format(inv=inventory) in result.stderr, result.stderr
    assert "booting" not in result.stdout and "Traceback" not in output(result)


@pytest.mark.parametrize(("estates", "message"), [
    (5, "malformed results file ('estates' is not a mapping of estates)"),
    ({}, "hold no estate besides new-mx: record the old estate's (pytest --hosts=OLD --mx-results="),
    ({"old-mx": [], "older-mx": []}, "hold estates old-mx, older-mx besides new-mx: say which is the old one with --old-estate"),
])
def test_old_results_that_name_no_single_old_estate_are_refused_before_any_host_boots(tmp_path, estates, message):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": "mxspec-results/1", "created": "", "estates": estates, "hosts": {}, "results": []}))
    result = run_mxspec("premerge", *EXAMPLE, "--old-results", str(old), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and message in result.stderr, output(result)
    assert "booting" not in result.stdout and "Traceback" not in output(result)


def test_an_estate_with_hosts_outside_the_lab_is_refused(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("new-mx:\n  children:\n    smtp-router:\n      hosts:\n        mx.example.net: {}\n")
    result = run_mxspec("premerge", "--playbook", "examples/ansible-estate/site.yml", "--inventory", str(inventory),
                        "--estate", "new-mx", "--old-results", "x.json", "--out", str(tmp_path / "out"))
    assert result.returncode == 2, output(result)
    assert "estate new-mx has host(s) the lab does not: mx.example.net; premerge converges lab hosts only" in result.stderr


def test_an_old_results_file_of_both_estates_is_taken_for_the_old_one_alone(tmp_path):
    """A results file from a run over both estates (as bin/gate writes) holds the new estate too; premerge
    judges against the old estate's part only, shard coverage kept as the file says it."""
    from mxspec.report.results import Result, Results, read

    both = Results({"old-mx": ["inbound-mx"], "new-mx": ["inbound-mx"]},
                   {"old-mx": {"old-1": ["inbound-mx"]}, "new-mx": {"new-1": ["inbound-mx"]}},
                   [Result(estate, host, ["inbound-mx"], "F", "S", "", "passed", "", "")
                    for estate, host in (("old-mx", "old-1"), ("new-mx", "new-1"))],
                   shard="1/2", covers={"new-mx": ["new-1"]})
    both.write(tmp_path / "both.json")
    alone = read(tmp_path / "both.json").of_estate("old-mx")
    assert (list(alone.estates), list(alone.hosts), [r.target for r in alone.results]) == (["old-mx"], ["old-mx"], ["old-1"])
    assert alone.covers == {"old-mx": []} and alone.targets("old-mx") == []  # this shard held none of old-mx's hosts
    whole = Results(both.estates, both.hosts, both.results).of_estate("old-mx")
    assert whole.covers is None and whole.targets("old-mx") == ["old-1", "old-mx"]
