"""TLS for the emulator: Cartesia is HTTPS/WSS only, and some clients dial ``wss://`` or
``https://`` whatever the base URL says (the JS SDK's WebSocket, LiveKit's Node plugin for
``/tts/bytes``). So the emulator can serve TLS with a certificate made on the fly.

``make_certificates`` writes a throw-away CA (``ca.pem``) and a server certificate it signed
(``cert.pem``, ``key.pem``) for the loopback names. A client trusts ``ca.pem``: Python
through ``SSL_CERT_FILE``, Node through ``NODE_EXTRA_CA_CERTS``. A CA and a separate leaf,
rather than one self-signed leaf, because strict verifiers (OpenSSL's X509_STRICT, which
Python 3.13 turns on, and Node) reject a leaf that is also its own CA. Needs
``cryptography`` (the ``tls`` extra); ``--cert/--key`` files need nothing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from .extras import ExtraMissing, install_hint

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # server certificate (PEM)
    key: Path  # its private key (PEM)
    ca: Path  # what clients trust: the CA that signed ``cert`` (or ``cert`` itself)


def make_certificates(directory: Path, hosts: tuple[str, ...] = LOOPBACK_NAMES) -> TlsFiles:
    """A fresh CA and a server certificate for ``hosts`` (names and IP addresses), written
    to ``directory``; files already there are reused, so a CA can stay trusted across runs."""
    files = TlsFiles(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")
    if all(p.exists() for p in (files.cert, files.key, files.ca)):
        return files
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise ExtraMissing(
            "--tls without --cert/--key needs the 'cryptography' package: "
            f"{install_hint('tls')}, or pip install cryptography"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    valid = (now - dt.timedelta(hours=1), now + dt.timedelta(days=30))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cartesia emulator test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    files.ca.write_bytes(ca_cert.public_bytes(pem))
    files.cert.write_bytes(cert.public_bytes(pem))
    files.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.key.chmod(0o600)
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(files.cert, files.key)
    return ctx


def client_context(ca: Path | str) -> ssl.SSLContext:
    """A client context that trusts the emulator (for aiohttp/httpx/websockets in tests)."""
    return ssl.create_default_context(cafile=str(ca))
