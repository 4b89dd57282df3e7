"""TLS client contexts are made once per kind and reused by every probe, never stale.

A small TLS server on loopback presents a certificate signed by a CA made here; the probes'
contexts are checked against it by real handshakes.
"""

import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from mxspec.transport import smtp

NAME = "mx.example.test"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> Path:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)
    return directory / f"{name}.pem"


def make_server_certificate(directory: Path, ca: str) -> tuple[Path, Path]:
    (directory / "san.cnf").write_text(f"subjectAltName=DNS:{NAME}\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={NAME}",
            "-keyout", "server.key", "-out", "server.csr", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.cnf", "-out", "server.pem", cwd=directory)
    return directory / "server.pem", directory / "server.key"


@pytest.fixture
def tls_server(tmp_path: Path):
    """(port, CA file) of a loopback TLS server whose certificate that CA signed; it answers handshakes until the test ends."""
    ca = make_ca(tmp_path, "estate-ca")
    certificate, key = make_server_certificate(tmp_path, "estate-ca")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(5)
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], ca
    stop.set()
    thread.join(timeout=5)
    listener.close()


def handshake(port: int, context: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        with context.wrap_socket(plain, server_hostname=NAME) as tls:
            return str(tls.version())


def test_a_context_trusting_the_estate_ca_verifies_the_server_and_is_made_once(tls_server):
    port, ca = tls_server
    context = smtp.client_context(str(ca))
    assert handshake(port, context)
    assert smtp.client_context(str(ca)) is context


def test_a_changed_ca_file_gets_a_new_context_not_the_one_made_before(tls_server, tmp_path: Path):
    port, ca = tls_server
    before = smtp.client_context(str(ca))
    assert handshake(port, before)
    other = make_ca(tmp_path, "another-ca")  # same path, another CA: the server's certificate no longer verifies
    ca.write_bytes(other.read_bytes())
    after = smtp.client_context(str(ca))
    assert after is not before
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(port, after)


def test_a_ca_file_written_again_with_the_same_content_keeps_its_context(tls_server):
    port, ca = tls_server
    before = smtp.client_context(str(ca))
    ca.write_bytes(ca.read_bytes())
    assert smtp.client_context(str(ca)) is before


def test_a_context_without_the_estate_ca_refuses_the_server(tls_server):
    port, _ = tls_server
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(port, smtp.client_context(None))  # the system's CAs did not sign it


def test_the_unverified_context_reads_any_server_and_is_made_once(tls_server):
    port, _ = tls_server
    assert handshake(port, smtp.unverified_context())
    assert smtp.unverified_context() is smtp.unverified_context()
    assert smtp.unverified_context().verify_mode == ssl.CERT_NONE


def test_a_capped_context_offers_no_version_above_its_cap(tls_server):
    port, ca = tls_server
    assert handshake(port, smtp.client_context(None, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    assert handshake(port, smtp.client_context(str(ca))) == "TLSv1.3"
    assert smtp.client_context(None, ssl.TLSVersion.TLSv1_2) is smtp.client_context(None, ssl.TLSVersion.TLSv1_2)
