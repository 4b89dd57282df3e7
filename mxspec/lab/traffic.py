"""The lab's traffic generator: a bounded, realistic mix of SMTP clients, for proving the canary's judge.

It runs inside a lab host (the lab's outside host, lab-remote), fed to that host's python3 on
standard input, so its traffic leaves from the lab's own network and goes only to a lab address.
Standard library only, for that reason. It is not a load test: it stops after `--count`
connections or `--seconds`, whichever comes first, at most `--clients` at once.

Each connection is one client behaving one way: sending a clean message (now and then two in one
connection), writing to a user who does not exist, sending spam (GTUBE) or a virus (EICAR), a
message over the size limit, using STARTTLS or not, going slowly, or dropping the connection
after its greeting. Printed at the end, as JSON: what each connection saw (the banner, which
says which MX answered; the replies), and the totals. A run never lasts longer than `hard_stop()`:
clients still talking then are cut off, and their records say so.
"""

import argparse
import ipaddress
import json
import os
import random
import smtplib
import socket
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor, wait

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# The kinds of client, and how often each comes (weights). "valid" is most of real traffic.
KINDS = {"valid": 62, "two messages": 6, "unknown user": 10, "spam": 7, "virus": 5, "oversize": 3,
         "slow": 4, "drops": 3}
TIMEOUT = 30  # seconds per SMTP command (--timeout): a client that waits longer gives up, as real ones do


def message(sender: str, recipient: str, body: str, number: int) -> str:
    return (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: canary traffic {number}\r\n"
            f"Message-ID: <canary-{number}-{random.getrandbits(48):x}@{sender.split('@')[1]}>\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n\r\n{body}\r\n")


def body_for(kind: str, rng: random.Random, size_limit: int) -> str:
    if kind == "spam":
        return f"Cheap offers today.\r\n{GTUBE}\r\n"
    if kind == "virus":
        return f"See attached.\r\n{EICAR}\r\n"
    if kind == "oversize":
        line = "x" * 998 + "\r\n"
        return line * (size_limit // len(line) + 64)
    words = ["mail", "relay", "order", "invoice", "meeting", "report", "hello", "thanks", "schedule"]
    return "\r\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(rng.randint(3, 60)))


def one_client(number: int, args: argparse.Namespace, deadline: float) -> dict:
    rng = random.Random(args.seed * 100003 + number)
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    tls = rng.random() < args.tls_share
    sender = f"{rng.choice(['ann', 'joe', 'kim', 'lee'])}@{rng.choice(args.sender_domains)}"
    recipients = [f"{rng.choice(args.users)}@{rng.choice(args.domains)}"]
    if kind == "unknown user":
        recipients = [f"nobody-{number}@{rng.choice(args.domains)}"]
    record: dict = {"number": number, "kind": kind, "tls": tls, "sender": sender, "started": time.time(),
                    "banner": "", "replies": [], "error": ""}
    if time.time() > deadline:
        record["error"] = "not started: time is up"
        return record
    try:
        converse(record, kind, recipients, number, args, rng)
    except Exception as error:  # noqa: BLE001 - one client's failure is its record, never the run's end
        record["error"] = f"{type(error).__name__}: {error}"
    return record


def converse(record: dict, kind: str, recipients: list[str], number: int, args: argparse.Namespace,
             rng: random.Random) -> None:
    """One client's SMTP conversation, as its kind behaves; the banner and each reply go into `record`."""
    sender, helo = record["sender"], f"client{number % 17}.{record['sender'].split('@')[1]}"
    with smtplib.SMTP(timeout=args.timeout) as client:
        client._host = args.target  # type: ignore[attr-defined]  # what STARTTLS would name as the server (smtplib sets it only in __init__)
        _code, banner = client.connect(args.target, args.port)
        record["banner"] = banner.decode(errors="replace")
        client.ehlo(helo)
        if kind == "drops":
            client.close()  # gone after the greeting, without QUIT
            record["replies"].append("dropped")
            return
        if record["tls"] and client.has_extn("starttls"):
            client.starttls(context=ssl._create_unverified_context())  # lab CA: the MX's name is not the point here
            client.ehlo(helo)
        if kind == "slow":
            time.sleep(rng.uniform(1.0, 4.0))  # a slow client: a pause before its mail, as a loaded sender makes
        for round_ in range(2 if kind == "two messages" else 1):
            text = message(sender, recipients[0], body_for(kind, rng, args.size_limit), number * 10 + round_)
            try:
                client.sendmail(sender, recipients, text)
                record["replies"].append("250")
            except smtplib.SMTPRecipientsRefused as refused:
                record["replies"].append(" ".join(str(code) for code, _ in refused.recipients.values()))
            except (smtplib.SMTPResponseException, smtplib.SMTPSenderRefused) as refused:
                record["replies"].append(str(refused.smtp_code))
                client.rset()
        client.quit()


def main() -> int:
    parser = argparse.ArgumentParser(prog="traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="the old inbound MX's address (a lab address)")
    parser.add_argument("--lab-network", required=True, help="the lab's subnet: the only place traffic may go")
    parser.add_argument("--port", type=int, default=25, help="its SMTP port (25; the project's tests use a local one)")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--clients", type=int, default=8, help="connections at once")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tls-share", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds a client waits for each answer")
    parser.add_argument("--size-limit", type=int, default=10240000)
    parser.add_argument("--domains", nargs="+", required=True)
    parser.add_argument("--users", nargs="+", required=True)
    parser.add_argument("--sender-domains", nargs="+", required=True)
    args = parser.parse_args()
    if ipaddress.ip_address(args.target) not in ipaddress.ip_network(args.lab_network):
        print(f"traffic: {args.target} is not in the lab's network {args.lab_network}", file=sys.stderr)
        return 2
    if not (0 < args.count <= 5000 and 0 < args.seconds <= 1800 and 0 < args.clients <= 32 and 0 < args.timeout <= 120):
        print("traffic: --count 1..5000, --seconds up to 1800, --clients 1..32, --timeout up to 120", file=sys.stderr)
        return 2
    socket.setdefaulttimeout(args.timeout)
    started = time.time()
    deadline = started + args.seconds
    pool = ThreadPoolExecutor(max_workers=args.clients)
    futures = [pool.submit(one_client, n, args, deadline) for n in range(args.count)]
    # The whole run's bound: no client starts after the deadline, and one still talking `hard_stop()` seconds
    # later (a server that answers each command just before its timeout) is cut off and said to be.
    wait(futures, timeout=hard_stop(args.seconds, args.timeout))
    records: list[dict] = [future.result() if future.done() else
                           {"number": n, "kind": "", "tls": False, "sender": "", "started": 0, "banner": "", "replies": [],
                            "error": "cut off at the run's time bound"} for n, future in enumerate(futures)]
    totals: dict[str, int] = {}
    for record in records:
        totals[record["kind"]] = totals.get(record["kind"], 0) + 1
    json.dump({"target": args.target, "seconds": round(time.time() - started, 1), "totals": totals,
               "connections": records}, sys.stdout)
    sys.stdout.flush()
    os._exit(0)  # not waiting for a client thread that is still stuck in a conversation


def hard_stop(seconds: float, timeout: float) -> float:
    """How long a run may last at most: its seconds, then two answers' wait for the clients still talking."""
    return seconds + 2 * timeout + 5

if __name__ == "__main__":
    sys.exit(main())
