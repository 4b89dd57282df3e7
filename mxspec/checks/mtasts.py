"""MTA-STS (RFC 8461) and SMTP TLS reporting (RFC 8460): what a local domain publishes in the
estate's DNS, and the MTA-STS policy its policy host serves over HTTPS.

Names are resolved with the estate's DNS (`Dns`), never with the system resolver: the policy is
fetched from the address the estate's DNS gives `mta-sts.DOMAIN`, with that name as SNI and Host,
verified against the estate's CA (`tls_ca`), bounded in time and size, and no redirect followed
(RFC 8461 3.3: senders do not follow them). The records and the policy are read by the short
parsers here: each is a list of `key=value;` tags or `key: value` lines.
"""

import re
import ssl
from dataclasses import dataclass

import urllib3

from mxspec.checks import dnschecks, smtpchecks
from mxspec.checks.dnschecks import Dns
from mxspec.checks.mailhost import Subject
from mxspec.core.errors import DependencyDown

POLICY_PATH = "/.well-known/mta-sts.txt"
HTTPS_PORT = 443
POLICY_LIMIT = 64 * 1024  # bytes read of a policy: a policy is a few lines; senders bound what they read too
POLICY_ID = re.compile(r"[A-Za-z0-9]{1,32}")  # RFC 8461 3.1
MODES = ("enforce", "testing", "none")
MAX_AGE_LIMIT = 31557600  # RFC 8461 3.2: at most a year, in seconds
REPORT_SCHEMES = ("mailto:", "https:")  # RFC 8460 3: where reports may go


@dataclass(frozen=True)
class Policy:
    """An MTA-STS policy as served: where it came from, its fields, and what is wrong with it."""

    url: str  # https://NAME/.well-known/mta-sts.txt (ADDRESS)
    fields: dict[str, list[str]]
    problems: list[str]

    @property
    def mode(self) -> str:
        return (self.fields.get("mode") or [""])[0]

    @property
    def mx(self) -> list[str]:
        return self.fields.get("mx", [])


def policy_name(domain: str) -> str:
    return f"mta-sts.{domain}"


def sts_record_problems(resolver: Dns, domain: str) -> list[str]:
    """Exactly one `v=STSv1` TXT record at `_mta-sts.DOMAIN`, with an id of 1 to 32 letters and digits."""
    name = f"_mta-sts.{domain}"
    records = [t for t in resolver.txt(name) if t.startswith("v=STSv1")]
    if len(records) != 1:
        return [f"{len(records) or 'no'} MTA-STS records (v=STSv1) at {name}, expected one"]
    policy_id = dnschecks.tags(records[0]).get("id", "")
    if not POLICY_ID.fullmatch(policy_id):
        return [f"{name}: id '{policy_id}' is not 1 to 32 letters and digits ('{records[0]}')"]
    return []


def parse_policy(text: str) -> tuple[dict[str, list[str]], list[str]]:
    """The policy's `key: value` lines (CRLF or LF) as key -> values, and what is wrong with it (RFC 8461 3.2)."""
    fields: dict[str, list[str]] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            problems.append(f"line {number} is not 'key: value': {line.strip()!r}")
            continue
        fields.setdefault(key.strip(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        problems.append(f"version {fields.get('version') or 'missing'}, expected STSv1")
    modes = fields.get("mode", [])
    if len(modes) != 1 or modes[0] not in MODES:
        problems.append(f"mode {modes or 'missing'}, expected one of {', '.join(MODES)}")
    ages = fields.get("max_age", [])
    if len(ages) != 1 or not ages[0].isdigit() or int(ages[0]) > MAX_AGE_LIMIT:
        problems.append(f"max_age {ages or 'missing'}, expected one whole number of seconds up to {MAX_AGE_LIMIT}")
    if not fields.get("mx") and modes != ["none"]:
        problems.append("no mx lines: the policy names no MX host")
    return fields, problems


def mx_matches(pattern: str, host: str) -> bool:
    """Whether a policy's `mx:` pattern covers an MX host: the name itself, or `*.` standing for
    exactly one leftmost label (RFC 8461 4.1); case does not matter."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label and dot) and rest == pattern[2:]
    return host == pattern


def _tls_reason(error: BaseException) -> str:
    """The TLS library's own words for a failed handshake (`certificate verify failed: ...`), not
    urllib3's nested reprs."""
    seen: BaseException | None = error
    while seen is not None:
        for cause in (seen, *seen.args):
            if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_message:
                return f"certificate verify failed: {cause.verify_message}"
            if isinstance(cause, ssl.SSLError) and cause.reason:
                return str(cause.reason)
            if isinstance(cause, ssl.CertificateError):
                return str(cause)
        seen = seen.__cause__ or seen.__context__
    return str(error)


def fetch_policy(name: str, address: str, ca_file: str, timeout: float, port: int = HTTPS_PORT,
                 evidence: list[str] | None = None) -> Policy:
    """The policy served at https://NAME/.well-known/mta-sts.txt by ADDRESS, its certificate valid for
    NAME and signed by `ca_file`; an AssertionError saying what went wrong where."""
    url = f"https://{name}{POLICY_PATH} ({address}{'' if port == HTTPS_PORT else f' port {port}'})"
    pool = urllib3.HTTPSConnectionPool(address, port, server_hostname=name, assert_hostname=name, ca_certs=ca_file,
                                       cert_reqs="CERT_REQUIRED", timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                       retries=False, maxsize=1)
    try:
        response = pool.urlopen("GET", POLICY_PATH, headers={"Host": name}, redirect=False, retries=False,
                                preload_content=False)
        try:
            body = response.read(POLICY_LIMIT + 1)
        finally:
            response.release_conn()
    except urllib3.exceptions.SSLError as error:
        raise AssertionError(f"{url}: TLS failed (a certificate for {name}, signed by the estate's CA, "
                             f"expected): {_tls_reason(error)}") from None
    except urllib3.exceptions.NewConnectionError as error:  # before its base class, ConnectTimeoutError
        raise AssertionError(f"{url}: cannot connect: {error.__cause__ or error}") from None
    except urllib3.exceptions.ConnectTimeoutError:
        raise DependencyDown(_endpoint(address, port), f"{url}: no connection within {timeout:g} s") from None
    except urllib3.exceptions.ReadTimeoutError:
        raise DependencyDown(_endpoint(address, port), f"{url}: no answer within {timeout:g} s") from None
    except urllib3.exceptions.HTTPError as error:
        raise AssertionError(f"{url}: {error}") from None
    finally:
        pool.close()
    kind = response.headers.get("Content-Type", "")
    if evidence is not None:
        evidence.append(f"HTTPS GET {url}: {response.status} {kind or '(no Content-Type)'}, {len(body)} bytes")
        evidence.extend(f"  {line}" for line in body[:POLICY_LIMIT].decode(errors="replace").splitlines())
    if response.status != 200:
        raise AssertionError(f"{url}: HTTP {response.status}, expected 200 with the policy")
    if len(body) > POLICY_LIMIT:
        raise AssertionError(f"{url}: longer than {POLICY_LIMIT} bytes: not a policy")
    fields, problems = parse_policy(body.decode(errors="replace"))
    if kind.split(";")[0].strip().lower() != "text/plain":  # RFC 8461 3.2: the policy is text/plain
        problems.append(f"Content-Type '{kind}', expected text/plain")
    return Policy(url, fields, problems)


def policies(subject: Subject, resolver: Dns, domain: str, ca_file: str,
             port: int = HTTPS_PORT) -> tuple[list[Policy], list[str]]:
    """The policy as served by each address the estate's DNS gives `mta-sts.DOMAIN`, and what kept
    any from being fetched."""
    name = policy_name(domain)
    addresses = resolver.query(name, "A")
    if not addresses:
        return [], [f"{name} has no A record: no host serves the MTA-STS policy"]
    found, problems = [], []
    silences = subject.pool.silences  # a policy host silent once is not waited for again in this run
    for address in addresses:
        try:
            silences.check(_endpoint(address, port))
            found.append(fetch_policy(name, address, ca_file, subject.timeout, port, subject.evidence))
        except DependencyDown as error:
            silences.remember(error.endpoint, str(error))
            problems.append(str(error))
        except AssertionError as error:
            problems.append(str(error))
    return found, problems


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def mx_hosts(resolver: Dns, domain: str) -> list[str]:
    """The MX host names of the domain's MX records, as the estate's DNS gives them."""
    return [rr.split()[1].rstrip(".") for rr in dnschecks.mx_records(resolver, domain)]


def coverage_problems(policy: Policy, mode: str, hosts: list[str]) -> list[str]:
    """What keeps a served policy from being the estate's: its own problems, another mode, an MX host
    no `mx:` pattern covers."""
    problems = [f"{policy.url}: {problem}" for problem in policy.problems]
    if policy.mode and policy.mode != mode:
        problems.append(f"{policy.url}: mode {policy.mode}, expected {mode}")
    for host in hosts:
        if not any(mx_matches(pattern, host) for pattern in policy.mx):
            problems.append(f"{policy.url}: no mx pattern covers MX host {host} (mx: {', '.join(policy.mx) or 'none'})")
    return problems


def mx_certificate_problems(subject: Subject, resolver: Dns, hosts: list[str], ca_file: str) -> list[str]:
    """STARTTLS on port 25 of each address of each MX host: a certificate for the host's name, signed
    by `ca_file`, as a sender enforcing MTA-STS requires."""
    context = smtpchecks.client_context(ca_file)
    problems = []
    for host in hosts:
        # Both families: a sender connects over IPv6 where the MX host has an AAAA record.
        addresses = resolver.query(host, "A") + resolver.query(host, "AAAA")
        if not addresses:
            problems.append(f"MX {host} has no address (no A or AAAA record)")
        for address in addresses:
            try:
                smtpchecks.starttls(subject, context, host, address=address)
            except ssl.SSLError as error:
                problems.append(f"MX {host} ({address}): STARTTLS certificate not valid for {host}: "
                                f"{_tls_reason(error)}")
            except AssertionError as error:
                problems.append(str(error))
    return problems


def tlsrpt_problems(resolver: Dns, domain: str, address: str) -> list[str]:
    """Exactly one `v=TLSRPTv1` TXT record at `_smtp._tls.DOMAIN`, whose rua lists mailto: or https:
    addresses only, `mailto:ADDRESS` among them (RFC 8460 3)."""
    name = f"_smtp._tls.{domain}"
    records = [t for t in resolver.txt(name) if t.startswith("v=TLSRPTv1")]
    if len(records) != 1:
        return [f"{len(records) or 'no'} TLS-RPT records (v=TLSRPTv1) at {name}, expected one"]
    rua = dnschecks.tags(records[0]).get("rua", "")
    uris = [uri.strip() for uri in rua.split(",") if uri.strip()]
    problems = [f"{name}: rua '{uri}' is not a mailto: or https: address" for uri in uris
                if not uri.lower().startswith(REPORT_SCHEMES)]
    if f"mailto:{address}".lower() not in (uri.lower() for uri in uris):
        problems.append(f"{name}: rua '{rua}' does not send reports to mailto:{address} ('{records[0]}')")
    return problems
