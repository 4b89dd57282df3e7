"""The pytest plugin: estates from `--hosts`, scenarios meeting hosts by role, clear failures.

Registered through the `pytest11` entry point, so installing mxspec is all it takes.
"""

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from mxspec import steps
from mxspec.bdd import adapter, parallel, preflight, vocabulary
from mxspec.bdd.progress import Progress
from mxspec.canary import behaviours as canary_behaviours
from mxspec.checks import changes, facts
from mxspec.checks.mailhost import MailHost, Subject
from mxspec.core.errors import CommandTimeout, HostUnreachable, MxspecError
from mxspec.estate import roles, shards
from mxspec.estate.inventory import Estate, load_estates, raw_estate
from mxspec.estate.target import Target, targets_for
from mxspec.estate.values import MissingVariable
from mxspec.report.collector import ResultsCollector, result_properties
from mxspec.transport.backends import spec_variables
from mxspec.transport.connection import Connection, ConnectionPool, as_unreachable, format_transcript

RUN = pytest.StashKey["Run"]()
FAILED_STEP = pytest.StashKey[str]()
TRANSCRIPT = pytest.StashKey[list]()
EVIDENCE = pytest.StashKey[list]()

# Exceptions whose message says it all: reported without a traceback.
PLAIN_FAILURES = (AssertionError, HostUnreachable, CommandTimeout, MxspecError)

OPT_IN = {
    "disruptive": ("mx_disruptive", "disrupts a service; run with --mx-disruptive"),
    "changes_host": ("mx_change", "changes a host's configuration; run with --mx-change"),
    "canary": ("mx_canary", "judges a canary's result; run with --mx-canary=FILE (written by `mxspec canary`)"),
}


class Run:
    """What one pytest run works on: the selected estates and their connections."""

    def __init__(self, estates: list[Estate], pool: ConnectionPool, timeout: float):
        self.estates = estates
        self.pool = pool
        self.timeout = timeout
        self.notices: list[str] = []  # what the run found and did on the hosts: restores, re-opened channels
        self.shard: shards.Shard | None = None  # --mx-shard: this runner checks these targets only
        self.units: set[str] = set()
        self.shard_note = ""  # why this shard has nothing to run, when it has not
        self.read_first: dict[str, set[str]] = {}  # host -> what an estate scenario of the run will read of it
        self.settled: set[str] = set()  # hosts whose first reads were made or refused (`_first_reads_settled`)
        self.placed: dict[str, str] = {}  # a distributed run's controller: test id -> the piece of its host (`_pieces`)

    def targets(self, estates: bool = True) -> list[str]:
        """Every target this run checks, as shard units: each host, and (`estates`) each estate for its
        @estate scenarios."""
        every = [shards.unit(e.name, t) for e in self.estates for t in [*e.hosts, *([e.name] if estates else [])]]
        return every if self.shard is None else [unit for unit in every if unit in self.units]

    def names(self) -> list[str]:
        """Every host and estate name, longest first: what test ids are read with (see parallel.target_in_id)."""
        return sorted({e.name for e in self.estates} | {h for e in self.estates for h in e.hosts}, key=len, reverse=True)

    def covers(self) -> dict[str, list[str]] | None:
        """Estate -> the targets (hosts, and the estate itself for @estate) this run checks; None: all."""
        if self.shard is None:
            return None
        return {e.name: [t for t in [*e.hosts, e.name] if shards.unit(e.name, t) in self.units] for e in self.estates}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mxspec", "mxspec: estates and behaviours")
    group.addoption("--inventories", metavar="PATH", default=None,
                    help="an Ansible inventory (INI or YAML file, or a directory with group_vars/ and host_vars/) "
                         "whose groups are estates, or a directory of <estate>.yml files "
                         "(default: inventories/ in the rootdir)")
    group.addoption("--mx-vault-password-file", metavar="FILE", default=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"),
                    help="decrypt vault-encrypted inventory values with the password in FILE (needs ansible-core: "
                         "mxspec[ansible]; default: $ANSIBLE_VAULT_PASSWORD_FILE)")
    group.addoption("--roles", metavar="ROLE,ROLE", default=None,
                    help="roles of hosts given in --hosts as raw testinfra specs (ssh://..., local://)")
    group.addoption("--mx-connect-timeout", metavar="SECONDS", type=float, default=10,
                    help="bound on reaching a host (default 10)")
    group.addoption("--mx-timeout", metavar="SECONDS", type=float, default=30,
                    help="bound on every remote command and network exchange (default 30)")
    group.addoption("--mx-disruptive", action="store_true",
                    help="also run scenarios tagged @disruptive (they stop services for a moment)")
    group.addoption("--mx-change", action="store_true",
                    help="also run scenarios tagged @changes_host (they change and restore hosts)")
    group.addoption("--mx-canary", metavar="FILE", default=None,
                    help="also run the scenarios tagged @canary: they judge the canary result FILE (canary.json, "
                         "written by `mxspec canary`) for the estate that took the canary's share")
    group.addoption("--mx-results", metavar="FILE", default=None,
                    help="write every scenario's result to FILE (JSON), for `mxspec report`")
    group.addoption("--mx-report", metavar="DIR", default=None,
                    help="compare the first estate of --hosts (old) with the second (new): write the readiness "
                         "report (HTML, Markdown, JSON) to DIR; the exit code is 0 for GO, 1 for NO-GO")
    group.addoption("--mx-waivers", metavar="FILE", default=None,
                    help="accepted differences (scenario, host, reason, owner, expires) for the readiness report")
    group.addoption("--mx-diff", metavar="FILE", default=None,
                    help="what `mxspec diff OLD NEW --json FILE` found, for the readiness report: a section of it, and "
                         "beside each failing behaviour the differences that may explain it")
    group.addoption("--mx-shard", metavar="K/N", default=None,
                    help="check shard K of N: a stable share of the selected estates' hosts, for N runners; "
                         "write --mx-results on each and merge them with `mxspec report`")
    group.addoption("--mx-parallel", metavar="N", default=None,
                    help="check up to N hosts at once on pytest-xdist workers (default: one more than the CPUs "
                         "mxspec may use, at most the hosts of the run; 1: one after another)")


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, Any, Any]:
    """The run's estates, loaded before anything else runs: how many hosts they hold sizes pytest-xdist's
    workers, which its own pytest_cmdline_main starts from the options set here (a wrapper's code before
    `yield` runs before every plain implementation, xdist's tryfirst one included)."""
    try:
        config.stash[RUN] = run = _make_run(config)
        config.add_cleanup(run.pool.close)
        option = config.option
        if option.mx_report and len(run.estates) != 2:
            raise MxspecError("--mx-report compares two estates: give --hosts=OLD,NEW (old first)")
        if option.mx_shard:
            _shard(run, option.mx_shard, option.mx_report)
        if not (option.mx_results or option.mx_report) and option.mx_waivers:
            raise MxspecError("--mx-waivers goes with --mx-report")
        if option.mx_canary:
            canary_behaviours.load(option.mx_canary)  # a bad file is said before any host is contacted
        if option.mx_diff and not option.mx_report:
            raise MxspecError("--mx-diff goes with --mx-report (or give it to `mxspec report --diff`)")
        if not hasattr(config, "workerinput"):  # a worker of a distributed run starts none itself
            parallel.distribute(config, len(run.targets(estates=False)))
    except MxspecError as error:
        raise pytest.UsageError(str(error)) from None
    return (yield)


def pytest_configure(config: pytest.Config) -> None:
    for role, description in roles.ROLES.items():
        config.addinivalue_line("markers", f"{roles.role_tag(role)}: hosts with role {role}: {description}")
    for tag, description in roles.SCOPE_TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {description}")
    config.addinivalue_line("markers", "xdist_group(name): the target (host or estate) a scenario runs against, for "
                            "pytest-xdist's --dist loadgroup")
    run, option = config.stash[RUN], config.option
    if run.estates:
        adapter.no_collections_at_exit(config)
    if hasattr(config, "workerinput"):
        return  # the controller writes results and shows progress: xdist workers hand theirs back in their reports
    if run.estates:
        config.pluginmanager.register(Progress(config), "mxspec-progress")
    if option.mx_results or option.mx_report:
        try:
            collector = ResultsCollector(run.estates, Path(option.mx_results) if option.mx_results else None,
                                         Path(option.mx_report) if option.mx_report else None, option.mx_waivers,
                                         str(run.shard or ""), run.covers(), option.mx_diff, option.mx_canary)
        except MxspecError as error:  # the waivers file, the differential
            raise pytest.UsageError(str(error)) from None
        config.pluginmanager.register(collector, "mxspec-results")


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The built-in phrases, for every feature of every project: imported as the session starts, after
    pytest-xdist's own sessionstart has started the run's workers, so that they start without waiting
    for the DNS, SMTP and TLS libraries the phrases import (~0.1 s of the controller's CPU before its
    first worker could start); pytest reads their step definitions as each is registered."""
    for name in steps.MODULES:
        session.config.pluginmanager.import_plugin(name)


def _runs_scenarios_here(config: pytest.Config) -> bool:
    """This process runs the session's scenarios itself (not a distributed run's controller, nor one of its
    workers, which learn their hosts as they are given them) and runs them (not --collect-only and the like)."""
    option = config.option
    listing = (option.collectonly, option.setuponly, option.setupplan, option.showfixtures,
               option.show_fixtures_per_test)
    return not (config.pluginmanager.has_plugin("dsession") or hasattr(config, "workerinput") or any(listing))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """While a scenario runs, the host of the next one is reached if it is not yet (Connection.open_ahead):
    on a worker, the host it is given next, while it checks the last scenario of the one before."""
    run = item.config.stash.get(RUN, None)
    if run is None or nextitem is None or nextitem.get_closest_marker("skip"):
        return
    target = _target(nextitem)
    if target is not None and target.host is not None:
        run.pool.open_ahead([target.host])


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Under pytest-xdist the controller collects too, as a serial run does (its workers collect again, to
    run): what stops a run before any host is contacted (undefined steps, the estate contract, a broken
    feature) stops it here, before any worker is given a scenario; and the run's plan is known for progress.
    xdist's own hook, after this one, keeps pytest from collecting a second time."""
    config = session.config
    if config.pluginmanager.has_plugin("dsession") and config.stash[RUN].estates:
        session.perform_collect()
        if session.testsfailed and not config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} "
                                      "during collection")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Each worker is told where the run's processes leave each other their answers (transport/shared.py)
    and where their control masters listen (transport/connection.py)."""
    if node.config.stash.get(RUN, None) is not None:
        parallel.share_with(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadgroup (mxspec's own choice, or the operator's): each host's scenarios on one worker, or in pieces
    (HostScheduling)."""
    run = config.stash.get(RUN, None)
    if run and run.estates and config.getvalue("dist") == "loadgroup":
        return parallel.HostScheduling(config, log, run.names(), {estate.name for estate in run.estates}, run.placed)
    return None


def _shard(run: Run, spec: str, report: str | None) -> None:
    shard = shards.parse(spec)
    if report:
        raise MxspecError(f"--mx-shard={spec} with --mx-report: a shard holds part of the estates, and the "
                          "readiness verdict is for the whole of them; write --mx-results=FILE on each shard "
                          "and merge the files with `mxspec report FILE... --old OLD --new NEW`")
    run.units = shard.select(run.targets())
    run.shard = shard


def _make_run(config: pytest.Config) -> Run:
    for name in ("mx_connect_timeout", "mx_timeout"):
        if getattr(config.option, name) <= 0:
            raise MxspecError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    directory = Path(config.option.inventories or Path(config.rootpath) / "inventories")
    selected = [name.strip() for name in (config.getoption("hosts", None) or "").split(",") if name.strip()]
    estates = load_estates(directory, [name for name in selected if "://" not in name],
                           config.option.mx_vault_password_file)
    raw = [spec for spec in selected if "://" in spec]
    if raw:
        estates.append(raw_estate(raw, config.option.roles, spec_variables))
    elif config.option.roles:
        raise MxspecError("--roles applies to hosts given as raw specs (ssh://..., local://) in --hosts")
    pool = ConnectionPool(config.option.mx_connect_timeout, config.option.mx_timeout, is_fact=facts.is_fact,
                          shared=parallel.shared_answers(config), is_shared=facts.is_shared,
                          control_dir=parallel.control_dir(config))
    run = Run(estates, pool, config.option.mx_timeout)
    run.pool.on_contact = lambda connection: _first_contact(run, connection)
    return run


def _first_contact(run: Run, connection: Connection) -> None:
    """First thing on every host: undo what an interrupted run left changed there, and say so; then read
    what an estate scenario of the run will read of the host, while it is connected (`_reads_every_host`)."""
    try:
        notices = changes.restore_left_over(connection)
    except CommandTimeout as error:
        notices = [f"host {connection.name}: could not look for changes left by an interrupted run: {error}"]
    run.notices += notices  # shown in the terminal summary (output during a test is captured)
    for command in sorted(run.read_first.get(connection.name, ())):
        try:
            connection.run(command)  # a fact: kept, and left for the run's other processes
        except CommandTimeout:
            pass  # the estate scenario asks again, and says what it got


def _reads_every_host(run: Run, items: list[pytest.Item]) -> dict[str, set[str]]:
    """Host -> the commands the run's estate scenarios will read of it (a step declaring
    `facts.compares_every_host`, for the role its phrase names, where two or more hosts play it). Read
    as each host is first contacted, on the worker checking it, and the estate scenarios run last:
    they find every answer read, or wait for it (a host they have not reached is checked on another
    worker, now or soon), and open no second connection to each host (half of a distributed run's
    connections, each ~0.15 s of CPU)."""
    reads: dict[str, set[str]] = {}
    for item in items:
        target = _target(item)
        scenario = adapter.scenario(item)
        if target is None or target.host is not None or scenario is None or item.get_closest_marker("skip"):
            continue
        for step in scenario.steps:
            for function, arguments in adapter.step_arguments(step, item):
                command, role = getattr(function, facts.COMPARES_EVERY_HOST, None), arguments.get("role")
                hosts = [host for host in target.estate.hosts.values() if role and host.has_any_role({role})]
                if command and len(hosts) > 1:
                    for host in hosts:
                        reads.setdefault(host.name, set()).add(command)
    return reads


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist the restores happen in the workers; their notices travel back in
    # workeroutput, which xdist hands to the controller when a worker ends.
    run = session.config.stash.get(RUN, None)
    if run:
        run.notices += run.pool.notices()
    if run and hasattr(session.config, "workeroutput"):
        session.config.workeroutput["mxspec_notices"] = run.notices
    # A matrix may be wider than the estate: a shard with nothing to check passes, and says so.
    if run and run.shard_note and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    run = node.config.stash.get(RUN, None)
    if run:
        run.notices += getattr(node, "workeroutput", {}).get("mxspec_notices", [])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run and run.shard_note:
        terminalreporter.write_line(f"mxspec: {run.shard_note}", yellow=True)
    if run and run.notices:
        terminalreporter.section("mxspec: notices from the hosts", yellow=True)
        for notice in dict.fromkeys(run.notices):  # each once: the workers checking pieces of a host may all say it
            terminalreporter.write_line(notice)


@pytest.fixture(autouse=True)
def mx_target(request: pytest.FixtureRequest) -> Target | None:
    """The host (or estate) this scenario runs against; parametrized per scenario by role."""
    return getattr(request, "param", None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not adapter.is_scenario_function(metafunc.function):
        return
    run = metafunc.config.stash[RUN]
    tags = {mark.name for mark in metafunc.definition.iter_markers()}
    targets = targets_for(tags, run.estates)
    if targets:
        # xdist_group: with pytest-xdist's --dist loadgroup, one host's scenarios stay on one worker, one
        # after another, or go out in pieces where mxspec distributes (bdd/parallel.py); its own hook reads
        # the mark before later hooks could add it.
        metafunc.parametrize("mx_target", [pytest.param(t, id=t.name, marks=pytest.mark.xdist_group(t.name))
                                           for t in targets], scope="function")


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: check only what will run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    scenario_items = [item for item in items if _is_scenario(item)]
    if not scenario_items:
        return
    run = config.stash[RUN]
    if not run.estates:
        raise pytest.UsageError(
            "no estate selected: run with --hosts=ESTATE[,ESTATE] (inventories in "
            f"{config.option.inventories or 'inventories/'})")
    # Scenarios with no host of their role in the selected estates are not collected at all.
    items[:] = [item for item in items if not _is_scenario(item) or _target(item) is not None]
    # The scenarios run once per estate last: what they read of every host of a role was read as each
    # host was first contacted (`_reads_every_host`), so they need not reach the hosts again.
    items.sort(key=_once_per_estate)
    if run.shard is not None:
        _keep_shard(config, run, items)
    for order, item in enumerate(items):
        target = _target(item)
        if target is None:
            continue
        scenario = adapter.scenario(item)
        assert scenario is not None  # only scenarios have a target
        tags = {mark.name for mark in item.iter_markers()}
        item.user_properties += result_properties(target, tags, scenario.feature, scenario.name,
                                                  ", ".join(f"{k}={v}" for k, v in scenario.example.items()), order)
        for tag, (option, reason) in OPT_IN.items():
            if item.get_closest_marker(tag) and not getattr(config.option, option):
                item.add_marker(pytest.mark.skip(reason=f"not run: {reason}"))
    run.placed = _pieces(config, items)
    # A worker that shares nothing (a distribution the operator chose) would read them for nobody.
    sharing = run.pool.shared is not None or not hasattr(config, "workerinput")
    run.read_first = _reads_every_host(run, items) if sharing else {}
    checked = {target.host.name: target.host for item in items if not item.get_closest_marker("skip")
               and (target := _target(item)) is not None and target.host is not None}
    run.pool.awaited = {host for host in run.read_first if host in checked}  # their workers will read them
    # Stop before any host is contacted. (Under pytest-xdist the controller collects too and stops the run
    # here, see pytest_collection; its workers, which could not stop it cleanly, need not check again.)
    if not hasattr(config, "workerinput"):
        _stop_on_bad_input(config, scenario_items, items)
        if _runs_scenarios_here(config):
            # Nothing stopped the run: its first scenarios go round every host they check (scenario by
            # scenario), so those hosts are reached together now, in the background, not one by one.
            run.pool.open_ahead(list(checked.values()))


def _pieces(config: pytest.Config, items: list[pytest.Item]) -> dict[str, str]:
    """On the controller of a run mxspec distributed itself, which hosts' scenarios may spread over several
    workers (parallel.pieces): those of a host that runs no opt-in scenario (a change, a disruption, a
    canary's judgement) in this run. Read-only scenarios may overlap on a host as they overlap across
    hosts; a change never overlaps another scenario there."""
    workers = parallel.workers_of(config)
    if not (workers > 1 and config.pluginmanager.has_plugin("dsession")):
        return {}
    hosts: dict[str, list[tuple[str, bool]]] = {}
    changed: set[str] = set()
    running = 0
    for item in items:
        target = _target(item)
        if target is None:
            continue
        runs = not item.get_closest_marker("skip")
        running += runs
        if target.host is not None:
            hosts.setdefault(target.name, []).append((parallel.scenario_id(item.nodeid), runs))
            if runs and any(item.get_closest_marker(tag) for tag in OPT_IN):
                changed.add(target.name)
    return parallel.pieces({host: tests for host, tests in hosts.items() if host not in changed}, running, workers)


def _stop_on_bad_input(config: pytest.Config, scenario_items: list[pytest.Item], items: list[pytest.Item]) -> None:
    problems = vocabulary.undefined_steps(scenario_items)
    if problems:
        raise pytest.UsageError("features use undefined steps (no host was contacted):\n  " + "\n  ".join(problems))
    # Opt-in scenarios left out of this run need no inventory values.
    _preflight(config, [i for i in items if not i.get_closest_marker("skip")])


def _keep_shard(config: pytest.Config, run: Run, items: list[pytest.Item]) -> None:
    """--mx-shard: the scenarios of this shard's hosts; the others deselected, as -k would."""
    def mine(item: pytest.Item) -> bool:
        target = _target(item)
        return target is None or shards.unit(target.estate.name, target.name) in run.units

    others = [item for item in items if not mine(item)]
    if others:
        items[:] = [item for item in items if mine(item)]
        config.hook.pytest_deselected(items=others)
    hosts = sorted(unit for unit in run.units if unit.partition("/")[2] not in {e.name for e in run.estates})
    if not run.units:
        run.shard_note = f"shard {run.shard} has no host of the selected estates: nothing to check here"
    elif not any(_is_scenario(item) for item in items):
        run.shard_note = (f"shard {run.shard} has no scenario to run on its hosts "
                          f"({', '.join(hosts) or 'the estates themselves'})")


def _preflight(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The estate contract, before any host is contacted: warnings shown, errors stop the run."""
    findings = preflight.check(items, _target)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for warning in findings.warnings:
        if reporter is not None:
            reporter.write_line(f"mxspec: warning: {warning}", yellow=True)
    problems = []
    if findings.missing:
        problems.append("the inventory lacks values the features use (no host was contacted):\n  "
                        + "\n  ".join(findings.missing))
    if findings.mistyped:
        problems.append("inventory values of the wrong type (no host was contacted):\n  "
                        + "\n  ".join(findings.mistyped))
    if problems:
        raise pytest.UsageError("\n".join(problems))


def _is_scenario(item: pytest.Item) -> bool:
    return adapter.is_scenario(item)


def _once_per_estate(item: pytest.Item) -> bool:
    target = _target(item)
    return target is not None and target.host is None


def _target(item: pytest.Item) -> Target | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("mx_target") if callspec else None


@pytest.fixture
def mailhost(request: pytest.FixtureRequest, mx_target: Target | None) -> Generator[MailHost, None, None]:
    """The host under test, over the run's one connection to it."""
    if mx_target is None or mx_target.host is None:
        raise MxspecError("this step needs a host; the scenario runs once per estate (@estate)")
    run = request.config.stash[RUN]
    connection = run.pool.get(mx_target.host)
    transcript = request.node.stash.setdefault(TRANSCRIPT, [])
    connection.testinfra.transcript = transcript
    changing = any(request.node.get_closest_marker(tag) for tag in OPT_IN)
    if changing:  # what was read before may not hold during the change, nor after its restore
        run.pool.forget_facts()
    yield MailHost(mx_target, run.pool, run.timeout, request.getfixturevalue("evidence"))
    connection.testinfra.transcript = None
    if changing:
        run.pool.forget_facts()


@pytest.fixture
def canary_result(request: pytest.FixtureRequest, mx_target: Target) -> dict:
    """The canary's result (--mx-canary) for a scenario tagged @canary; not applicable to an estate that
    did not take the canary's share."""
    path = request.config.option.mx_canary
    result = canary_behaviours.load(path)
    if mx_target.estate.name != result["new"]:
        pytest.skip(f"not applicable: the canary in {path} sent its share to {result['new']}, not to {mx_target.estate.name}")
    return result


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> list[str]:
    """Lines the steps saw (SMTP transcripts, DNS answers), attached to the scenario's report."""
    return request.node.stash.setdefault(EVIDENCE, [])


@pytest.fixture
def estate(request: pytest.FixtureRequest, mx_target: Target, evidence: list[str]) -> Subject:
    """The estate as a whole, for scenarios tagged @estate (its `all` variables)."""
    run = request.config.stash[RUN]
    return Subject(mx_target, run.pool, run.timeout, evidence)


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """Reach the host first (restoring what an interrupted run left changed there). A host whose
    SSH does not answer still gets its outside-in scenarios (SMTP, DNS): only the steps that look
    inside it fail, at once, as unreachable."""
    target = request.getfixturevalue("mx_target")
    pool = request.config.stash[RUN].pool
    pool.silences.scenario = f"{scenario.name} [{target.name}]" if target is not None else scenario.name
    if target is not None and target.host is not None:
        try:
            pool.get(target.host).check()
        except HostUnreachable:
            pass
        finally:
            _first_reads_settled(request.config.stash[RUN], target.host.name)


def _first_reads_settled(run: Run, host: str) -> None:
    """Once the host has been reached (or not): what the first contact could not read for the estate
    scenarios is refused to the run's other processes, so that none waits for it (transport/shared.py)."""
    shared = run.pool.shared
    if shared is None or host in run.settled:
        return
    run.settled.add(host)
    for command in run.read_first.get(host, ()):
        shared.refuse(host, command)  # an answer left already stays


def pytest_bdd_step_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any,
                          step_func_args: Any, exception: Exception) -> None:
    where = os.path.relpath(feature.filename, request.config.rootpath)
    request.node.stash[FAILED_STEP] = f"{where}:{step.line_number}: {step.keyword} {step.name}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if not _is_scenario(item):
        return report
    if call.when == "teardown":  # e.g. a change that could not be restored: said plainly
        if report.failed and call.excinfo is not None and isinstance(call.excinfo.value, PLAIN_FAILURES):
            report.longrepr = str(call.excinfo.value)
        return report
    if call.when != "call":
        return report
    transcript = item.stash.get(TRANSCRIPT, [])
    lines = format_transcript(transcript) + item.stash.get(EVIDENCE, [])
    text = "\n".join(lines)
    if report.failed and call.excinfo is not None:
        target = _target(item)
        error = as_unreachable(call.excinfo.value, target.name if target else item.name)
        if isinstance(error, PLAIN_FAILURES + (MissingVariable,)):
            step = item.stash.get(FAILED_STEP, "")
            report.longrepr = f"{step}\n{error}" if step else str(error)
            if text:  # in the failure itself, so JUnit XML and other reports carry it
                report.longrepr += f"\n{' mxspec evidence '.center(60, '-')}\n{text}"
    if text:
        report.user_properties.append(("evidence", text))
        if not (report.failed and isinstance(report.longrepr, str)):
            report.sections.append(("mxspec evidence", text))
    return report
