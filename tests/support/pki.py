"""Test certificates made with ``cryptography``: a CA, server certificates per SNI name, a client
CA with a client certificate, and a rogue CA (for the route_verify tests against a local Envoy and
the ingress TLS tests on kind)."""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _cert(subject_cn, issuer_cert, issuer_key, key, is_ca=False, dns=None, client=False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(issuer_cert.subject if issuer_cert is not None else _name(subject_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        if issuer_cert is not None:
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


class Pki:
    """CA, server certificates per SNI name (``server_names``: label -> DNS name), a client CA
    and client certificates, and a rogue CA with a client certificate of its own."""

    def __init__(self, root, server_names):
        self.root = root
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert("meshops test CA", None, None, self.ca_key, is_ca=True)
        self.ca_path = self._pem("ca.pem", self.ca)
        self.client_ca_key = ec.generate_private_key(ec.SECP256R1())
        self.client_ca = _cert("meshops test client CA", None, None, self.client_ca_key, is_ca=True)
        self.client_ca_path = self._pem("client-ca.pem", self.client_ca)
        self.servers = {}
        for label, name in server_names.items():
            self.servers[label] = self._leaf(label, name, self.ca, self.ca_key, dns=[name])
        self.client_cert, self.client_key = self._leaf("client", "probe-client", self.client_ca, self.client_ca_key, client=True)
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        rogue_ca = _cert("rogue CA", None, None, rogue_key, is_ca=True)
        self.rogue_ca_path = self._pem("rogue-ca.pem", rogue_ca)
        self.rogue_cert, self.rogue_key = self._leaf("rogue", "rogue-client", rogue_ca, rogue_key, client=True)
        # a single file with certificate and key, the other form probes accept
        self.client_bundle = root / "client-bundle.pem"
        self.client_bundle.write_bytes(self.client_cert.read_bytes() + self.client_key.read_bytes())

    def _pem(self, name, cert):
        path = self.root / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def _leaf(self, label, cn, issuer, issuer_key, dns=None, client=False):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(cn, issuer, issuer_key, key, dns=dns, client=client)
        cert_path = self._pem(f"{label}.pem", cert)
        key_path = self.root / f"{label}-key.pem"
        _write_key(key, key_path)
        return cert_path, key_path
