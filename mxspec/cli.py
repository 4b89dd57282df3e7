"""The `mxspec` command: the lab's life cycle, reports, the differential of two estates, the step vocabulary and the
inventory variables."""

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from mxspec.core.errors import MxspecError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxspec", description="Behaviour-driven acceptance for mail estates.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lab = sub.add_parser("lab", help="the built-in lab: an old and a new estate in containers")
    lab.add_argument("--lab", metavar="DIR", default=None,
                     help="folder holding lab.yml, roles/ and templates/ (default: the built-in lab)")
    lab_sub = lab.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = lab_sub.add_parser("up", help="build images (cached), boot every host, wait until ready")
    up.add_argument("--subnet", help="IPv4 subnet of the lab bridge (default from lab.yml)")
    up.add_argument("--timeout", type=float, default=300, help="seconds to wait for hosts to be ready")
    up.add_argument("--keep-on-failure", action="store_true", help="leave a lab that failed to come up running, to look inside")
    up.add_argument("--bare", metavar="HOST[,HOST]", default="",
                    help="boot these hosts anew with the base role only, for a playbook to configure (`mxspec premerge` does)")
    lab_sub.add_parser("down", help="stop every host and remove the bridge and run state")
    lab_sub.add_parser("status", help="table of hosts, roles, addresses, state (exit 0 when all run)")
    heal = lab_sub.add_parser("heal", help="put hosts back to their state at boot and start what does not run "
                                           "(exit 2 naming host and cause when it cannot)")
    heal.add_argument("hosts", nargs="*", help="lab hosts (default: all)")
    lab_canary = lab_sub.add_parser("canary", help="the canary's split on the old inbound MX: a share of its port-25 "
                                               "connections sent to a new inbound MX, replies back through the old")
    lab_canary.add_argument("canary_action", choices=["start", "stop", "status"], metavar="start|stop|status")
    lab_canary.add_argument("--share", type=float, default=0.3, help="the share of connections sent to the new MX (default 0.3)")
    traffic = lab_sub.add_parser("traffic", help="a bounded mix of SMTP clients from the lab's outside host to the "
                                                 "old inbound MX (clean mail, unknown users, spam, viruses, oversize, TLS, slow)")
    traffic.add_argument("--count", type=int, default=600, help="connections (default 600, at most 5000)")
    traffic.add_argument("--seconds", type=float, default=300, help="stop after this long (default 300, at most 1800)")
    traffic.add_argument("--clients", type=int, default=8, help="connections at once (default 8)")
    traffic.add_argument("--seed", type=int, default=1, help="which mix (the same seed, the same clients)")
    traffic.add_argument("--timeout", type=float, default=30, help="seconds a client waits for each answer (default 30)")
    traffic.add_argument("--json", metavar="FILE", help="also write what each connection saw")
    ssh = lab_sub.add_parser("ssh", help="open a shell (or run a command) on a lab host")
    ssh.add_argument("host")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER)

    report = sub.add_parser("report", help="combine results files (--mx-results) into the readiness report")
    report.add_argument("results", nargs="+", help="results files written by pytest --mx-results")
    report.add_argument("--old", required=True, help="the estate that defines correct")
    report.add_argument("--new", required=True, help="the estate that must reproduce it")
    report.add_argument("--waivers", help="accepted differences (YAML)")
    report.add_argument("--diff", metavar="FILE", help="what `mxspec diff OLD NEW --json FILE` found: a section of the "
                                                       "report, and beside each failing behaviour what may explain it")
    report.add_argument("--canary", metavar="FILE", help="a canary's result (canary.json from `mxspec canary`): its "
                                                        "verdict in the report, with a link to its page")
    report.add_argument("--out", default="reports", help="folder for readiness.html/.md/.json (default: reports)")

    comment = sub.add_parser("comment", help="post the Markdown report on the pull request of this CI job")
    comment.add_argument("forge", choices=["github", "gitlab"], help="whose CI this runs in")
    comment.add_argument("--report", default="reports/readiness.md", help="the Markdown report (default: reports/readiness.md)")

    variables = sub.add_parser("vars", help="the inventory variables mxspec reads (the estate contract); with "
                                             "--hosts, what each estate sets and what a missing value disables")
    variables.add_argument("--hosts", metavar="ESTATE[,ESTATE]", help="estates to report on")
    variables.add_argument("--inventories", metavar="PATH", default="inventories",
                           help="the Ansible inventory (file or directory) or folder of <estate>.yml (default: inventories)")
    variables.add_argument("--features", metavar="DIR", default="features", help="feature files (default: features)")
    variables.add_argument("--mx-vault-password-file", metavar="FILE",
                           default=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"),
                           help="decrypt vault-encrypted values (default: $ANSIBLE_VAULT_PASSWORD_FILE)")
    variables.add_argument("--markdown", action="store_true", help="the contract as a Markdown table (the README's)")

    diff = sub.add_parser("diff", help="what differs between two estates, role by role: Postfix parameters (with why), "
                                       "services, milters, sockets, map keys, packages")
    diff.add_argument("old", help="the old estate (the one that defines correct)")
    diff.add_argument("new", help="the new estate")
    _reading_hosts(diff)
    diff.add_argument("--markdown", metavar="FILE", help="also write the differences as Markdown")
    diff.add_argument("--json", metavar="FILE", help="also write the differences as JSON (for mxspec report --diff)")

    discover = sub.add_parser("discover", help="a draft inventory of an estate from what its hosts do: every value "
                                               "with the command it came from, TODOs for what no host can tell")
    discover.add_argument("hosts", nargs="+", metavar="ESTATE|SPEC",
                          help="the estate (its roles are its role groups), or hosts as raw specs (ssh://root@mx1) "
                               "with --roles")
    discover.add_argument("-o", "--output", metavar="FILE", help="write the inventory here (default: standard output)")
    discover.add_argument("--roles", metavar="ROLE,...", help="the roles of hosts given as raw specs")
    _reading_hosts(discover)
    discover.add_argument("--markdown", metavar="FILE", help="also write what was found as Markdown")
    discover.add_argument("--json", metavar="FILE", help="also write what was found as JSON")
    canary = sub.add_parser("canary", help="judge a canary: the new estate's outcomes on the share of real connections "
                                           "it took, against the old estate's, from both estates' mail logs")
    canary.add_argument("--old", required=True, help="the estate that defines correct")
    canary.add_argument("--new", required=True, help="the estate taking the canary's share of connections")
    canary.add_argument("--since", required=True, metavar="WHEN",
                        help="the window's start: 2026-12-05T14:00 (this machine's local time), an ISO time with a "
                             "zone, @EPOCH, or how long ago: 30m, 2h")
    canary.add_argument("--window", metavar="DURATION", help="the window's length: 600, 10m, 2h (default: until now)")
    canary.add_argument("--share", type=float, help="the share of connections the split sends to the new estate: "
                                                   "the observed share is checked against it")
    canary.add_argument("--split-host", metavar="HOST", help="the old inbound MX that runs the split, when the old "
                                                           "estate has others (default: all of them)")
    canary.add_argument("--policy", metavar="FILE", help="tolerances, and the differences accepted (YAML)")
    canary.add_argument("--exclude-client", metavar="ADDRESS|NETWORK", action="append", default=[],
                        help="leave out connections from these clients on both estates (monitoring, probes); repeatable")
    canary.add_argument("--out", default="reports", help="folder for canary.html/.json/.txt (default: reports)")
    _reading_hosts(canary)
    premerge = sub.add_parser("premerge", help="the pre-merge check of a playbook: converge fresh lab hosts with it "
                                               "(twice), check the new estate's behaviours on them, judge against the "
                                               "old estate's results")
    premerge.add_argument("--playbook", required=True, type=Path, help="the playbook that configures the new estate")
    premerge.add_argument("--inventory", required=True, type=Path,
                          help="its Ansible inventory (file or folder with group_vars/): Ansible's and mxspec's")
    premerge.add_argument("--estate", required=True,
                          help="the inventory's group of the new estate (its hosts must be lab hosts)")
    premerge.add_argument("--old-results", required=True, type=Path,
                          help="the old estate's results file, recorded earlier with pytest --hosts=OLD --mx-results=FILE")
    premerge.add_argument("--old-estate",
                          help="which estate of the old results file is the old one (when it holds several)")
    premerge.add_argument("--base-playbook", type=Path, metavar="FILE",
                          help="the base branch's playbook (a checkout of it): it converges the hosts first, so that the "
                               "change lands as it will in production, and its handlers are exercised")
    premerge.add_argument("--base-inventory", type=Path, metavar="PATH",
                          help="the base branch's inventory (default: --inventory)")
    premerge.add_argument("--vault-password-file", type=Path, default=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"),
                          help="for ansible-playbook and mxspec alike (default: $ANSIBLE_VAULT_PASSWORD_FILE)")
    premerge.add_argument("--changes", action="store_true",
                          help="also run the change scenarios (--mx-change) on the converged hosts")
    premerge.add_argument("--converge-timeout", type=float, default=1200,
                          help="bound on each converge, in seconds (default 1200)")
    premerge.add_argument("--task-timeout", type=float, default=300, help="bound on each task, in seconds (default 300)")
    premerge.add_argument("--gate-timeout", type=float, default=1800,
                          help="bound on checking the behaviours, in seconds (default 1800)")
    premerge.add_argument("--out", type=Path, default=Path("reports/premerge"),
                          help="folder for premerge.md/.json, the converge logs and the readiness report "
                               "(default: reports/premerge)")
    premerge.add_argument("--lab", help="folder holding lab.yml (default: the built-in lab)")
    premerge.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS", help="more arguments for the gate's pytest run")
    steps = sub.add_parser("steps", help="print every step phrase features may use, with a description")
    steps.add_argument("--modules", default=None,
                       help="package of the project's own step modules, besides the built-in ones "
                            "(default: steps, where the current folder has one)")
    return parser


def _reading_hosts(command: argparse.ArgumentParser) -> None:
    """The options of a command that reads an estate's hosts (diff, discover, canary): where the inventory is, its bounds."""
    command.add_argument("--inventories", metavar="PATH", default="inventories",
                         help="the Ansible inventory (file or directory) or folder of <estate>.yml (default: inventories)")
    command.add_argument("--mx-vault-password-file", metavar="FILE", default=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"),
                         help="decrypt vault-encrypted values (default: $ANSIBLE_VAULT_PASSWORD_FILE)")
    command.add_argument("--mx-connect-timeout", metavar="SECONDS", type=float, default=10,
                         help="bound on reaching a host (default 10)")
    command.add_argument("--mx-timeout", metavar="SECONDS", type=float, default=60,
                         help="bound on every command run on a host (default 60)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except MxspecError as error:
        print(f"mxspec: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mxspec: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "steps":
        return _print_steps(args.modules)
    if args.command == "vars":
        return _print_vars(args)
    if args.command == "report":
        from mxspec.report.command import combine

        return combine(args.results, args.old, args.new, args.waivers, args.out, args.diff, args.canary)
    if args.command == "diff":
        from mxspec.diff.command import run

        return run(args.old, args.new, args.inventories, args.markdown, args.json, args.mx_vault_password_file,
                   args.mx_connect_timeout, args.mx_timeout)
    if args.command == "discover":
        from mxspec.diff.discover import run as discover

        return discover(args.hosts, args.inventories, args.output, args.roles, args.mx_vault_password_file,
                        args.mx_connect_timeout, args.mx_timeout, args.markdown, args.json)
    if args.command == "canary":
        try:
            from mxspec.canary.command import run as judge_canary
        except ImportError as error:  # scipy and matplotlib come with the canary extra
            raise MxspecError(f"mxspec canary needs the canary extra: pip install 'mxspec[canary]' ({error})") from None

        return judge_canary(args.old, args.new, args.inventories, args.since, args.window, args.share, args.policy,
                            args.out, args.mx_vault_password_file, args.mx_connect_timeout, args.mx_timeout,
                            args.exclude_client, args.split_host)
    if args.command == "premerge":
        return _premerge(args)
    if args.command == "comment":
        from mxspec.report.comment import post

        return post(args.forge, args.report)
    return _lab(args)


def _lab_root(args: argparse.Namespace) -> Path:
    """The lab's folder: --lab, else the built-in lab."""
    from mxspec.lab import BUILTIN

    root = Path(args.lab) if args.lab else BUILTIN
    if not (root / "lab.yml").exists():
        raise MxspecError(f"{root / 'lab.yml'}: no such file (pass --lab DIR: a folder holding lab.yml)")
    return root


def _premerge(args: argparse.Namespace) -> int:
    from mxspec.premerge.command import Options, run

    return run(Options(args.playbook, args.inventory, args.estate, args.old_results, args.out, _lab_root(args),
                       args.base_playbook, args.base_inventory, args.vault_password_file, args.changes,
                       args.converge_timeout, args.task_timeout, args.old_estate, args.pytest_args,
                       args.gate_timeout))


def _lab(args: argparse.Namespace) -> int:
    from mxspec.lab import commands

    root = _lab_root(args)
    if args.action == "up":
        commands.up(root, args.subnet, args.timeout, args.keep_on_failure,
                    [name.strip() for name in args.bare.split(",") if name.strip()])
    elif args.action == "down":
        commands.down(root)
    elif args.action == "status":
        return commands.status(root)
    elif args.action == "heal":
        done = commands.heal(root, args.hosts)
        print("\n".join(done) if done else "every host as it was at boot, and ready")
    elif args.action == "ssh":
        commands.ssh(root, args.host, args.remote_command)
    elif args.action in ("canary", "traffic"):
        return _lab_canary(root, args)
    return 0


def _lab_canary(root: Path, args: argparse.Namespace) -> int:
    from mxspec.lab import canary

    if args.action == "traffic":
        sent = canary.send_traffic(root, args.count, args.seconds, args.clients, args.seed, timeout=args.timeout)
        if args.json:
            Path(args.json).write_text(json.dumps(sent, indent=1) + "\n")
        answered = ", ".join(f"{name} {count}" for name, count in sorted(canary.answered_by(sent).items()))
        print(f"{len(sent['connections'])} connections in {sent['seconds']:g} s to {sent['target']}; answered by: {answered}")
    elif args.canary_action == "start":
        print(f"canary started: {canary.start(root, args.share).describe()}")
    elif args.canary_action == "stop":
        print("\n".join(["canary stopped"] + canary.stop(root)))
    else:
        print(canary.status(root))
    return 0


def vars_markdown() -> str:
    from mxspec.bdd import varsdoc

    return varsdoc.markdown()


def _print_vars(args: argparse.Namespace) -> int:
    from mxspec.bdd import varsdoc
    from mxspec.estate.inventory import load_estates

    if args.markdown:
        print(varsdoc.markdown(), end="")
    elif not args.hosts:
        print(varsdoc.describe(Path(args.features)))
    else:
        names = [name.strip() for name in args.hosts.split(",") if name.strip()]
        estates = load_estates(args.inventories, names, args.mx_vault_password_file)
        print("\n\n".join(varsdoc.estate_report(estate, Path(args.features)) for estate in estates))
    return 0


def _print_steps(package: str | None) -> int:
    from mxspec import steps
    from mxspec.bdd import vocabulary

    sys.path.insert(0, str(Path.cwd()))
    if package is None and (Path.cwd() / "steps" / "__init__.py").exists():
        package = "steps"  # the project's own steps, beside the built-in ones
    try:
        modules = list(steps.MODULES)
        if package:
            modules += importlib.import_module(package).MODULES
        for name in modules:
            importlib.import_module(name)
    except (ImportError, AttributeError) as error:
        raise MxspecError(f"cannot load step modules from '{package}' ({error}); run from the project's folder") from None
    print(vocabulary.format_vocabulary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
