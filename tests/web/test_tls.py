"""``liveshop serve --ssl-keyfile --ssl-certfile`` serves HTTPS, as README "Serving over TLS"
says: a certificate for 127.0.0.1 signed by a CA the test makes, trusted by the client
alone (the ``cryptography`` package comes with aiortc)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from benches.processes import free_port, spawn, stop
from config import Settings
from tests.web.serving import serve_env


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (CA file, key file, cert file)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("liveshop test CA"))
        .issuer_name(_name("liveshop test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, key_file, cert_file = folder / "ca.pem", folder / "key.pem", folder / "cert.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, key_file, cert_file


def _wait_https(url: str, proc: subprocess.Popen[bytes], verify: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, verify=verify, timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"{url} did not answer within 30 s"
        time.sleep(0.2)


def test_serve_answers_over_https_with_its_certificate(settings: Settings, tmp_path: Path) -> None:
    ca_file, key_file, cert_file = make_certificates(tmp_path)
    port = free_port()
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--no-migrate"]
    command += ["--ssl-keyfile", str(key_file), "--ssl-certfile", str(cert_file)]
    trusted = ssl.create_default_context(cafile=str(ca_file))
    with log_path.open("wb") as log:
        proc = spawn(
            command, env=serve_env(settings, tmp_path), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_https(f"https://127.0.0.1:{port}/healthz", proc, trusted)
            resp = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trusted)
            assert resp.status_code == 200 and resp.json() == {"status": "ok"}
            assert resp.url.scheme == "https"
            # a client that does not trust the test CA refuses the certificate
            with contextlib.suppress(httpx.ConnectError):
                httpx.get(f"https://127.0.0.1:{port}/healthz", verify=ssl.create_default_context())
                raise AssertionError("a certificate of an unknown CA was accepted")
            # plain HTTP on the TLS port is not served
            with contextlib.suppress(httpx.TransportError):
                plain = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                assert plain.status_code != 200, "plain HTTP answered on the TLS port"
        finally:
            stop(proc, signal.SIGINT, timeout_s=15)
    assert proc.returncode is not None


def test_a_key_without_a_certificate_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "web.cli", "serve", "--ssl-keyfile", str(tmp_path / "k.pem")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "--ssl-keyfile and --ssl-certfile go together" in proc.stderr
