"""Testinfra checks of the securestack.pki.ca role (scenario ``ca``).

Defaults apply except on ca-debian13, where converge.yml sets a root
passphrase: that host checks the encrypted-root path (root left out of the
timer, long-lived root CRL).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

BASE = "/var/lib/securestack-pki"
PUBLIC = "/var/lib/securestack-pki-public"
ENGINE = "/usr/local/lib/securestack-pki"
CAS = ("root", "services")
CLI = f"PYTHONPATH={ENGINE} /usr/bin/python3 -m securestack_pki"


def encrypted_root(host) -> bool:
    return host.backend.get_hostname() == "ca-debian13"


def ca_file(name: str, leaf: str) -> str:
    return f"{BASE}/{name}/{leaf}"


def openssl_date(text: str) -> dt.datetime:
    """Parse 'nextUpdate=Dec  3 19:00:00 2025 GMT' (the value after '=')."""
    value = " ".join(text.split("=", 1)[1].split())
    return dt.datetime.strptime(value, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)


def now(host) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(host.check_output("date +%s")), dt.UTC)


def test_packages_installed(host):
    for package in ("python3-cryptography", "openssl"):
        assert host.package(package).is_installed


def test_base_dir_is_private(host):
    base = host.file(BASE)
    assert base.is_directory
    assert (base.user, base.group, base.mode) == ("root", "root", 0o700)


@pytest.mark.parametrize("name", CAS)
def test_ca_dir_and_key_are_private(host, name):
    directory = host.file(f"{BASE}/{name}")
    assert directory.is_directory
    assert (directory.user, directory.mode) == ("root", 0o700)
    key = host.file(ca_file(name, "ca.key"))
    assert key.is_file
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert "PRIVATE KEY" in key.content_string


@pytest.mark.parametrize("name", CAS)
def test_only_public_files_of_the_ca_are_readable_by_others(host, name):
    ledger = host.file(ca_file(name, "ledger.sqlite3"))
    assert (ledger.user, ledger.mode) == ("root", 0o600)
    # Certificates and CRLs may be 0644 (the 0700 directory guards them);
    # nothing else may be open to others.
    public = {"ca.crt", "chain.pem", "crl.pem", "crl.der"}
    out = host.check_output(f"find {BASE}/{name} -mindepth 1 -perm /o=rwx -printf '%f\\n'")
    assert set(out.split()) <= public


def test_root_key_encryption_follows_passphrase(host):
    header = host.file(ca_file("root", "ca.key")).content_string.splitlines()[0]
    if encrypted_root(host):
        assert header == "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    else:
        assert "ENCRYPTED" not in header
    assert "ENCRYPTED" not in host.file(ca_file("services", "ca.key")).content_string


def test_root_is_self_signed_with_pathlen_1(host):
    crt = ca_file("root", "ca.crt")
    subject = host.check_output(f"openssl x509 -in {crt} -noout -subject -nameopt RFC2253")
    issuer = host.check_output(f"openssl x509 -in {crt} -noout -issuer -nameopt RFC2253")
    assert subject == "subject=CN=SecureStack Root CA,O=SecureStack"
    assert issuer == "issuer=CN=SecureStack Root CA,O=SecureStack"
    ext = host.check_output(f"openssl x509 -in {crt} -noout -ext basicConstraints")
    assert "critical" in ext
    assert "CA:TRUE, pathlen:1" in ext
    # A self-signed root verifies against itself.
    host.run_expect([0], f"openssl verify -x509_strict -CAfile {crt} {crt}")


def test_services_ca_has_pathlen_0(host):
    crt = ca_file("services", "ca.crt")
    ext = host.check_output(f"openssl x509 -in {crt} -noout -ext basicConstraints,keyUsage")
    assert "CA:TRUE, pathlen:0" in ext
    assert "Certificate Sign, CRL Sign" in ext
    issuer = host.check_output(f"openssl x509 -in {crt} -noout -issuer -nameopt RFC2253")
    assert issuer == "issuer=CN=SecureStack Root CA,O=SecureStack"


def test_services_chain_verifies_against_root(host):
    root = ca_file("root", "ca.crt")
    services = ca_file("services", "ca.crt")
    cmd = host.run(f"openssl verify -x509_strict -CAfile {root} -untrusted {services} {services}")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == f"{services}: OK"
    # And not against a trust store that lacks our root: the check can fail.
    other = host.run(f"openssl verify -CAfile {services} {services}")
    assert other.rc != 0


def test_services_chain_file_is_services_then_root(host):
    chain = host.file(ca_file("services", "chain.pem")).content_string
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", chain, re.S)
    assert len(certs) == 2
    services = host.file(ca_file("services", "ca.crt")).content_string.strip()
    root = host.file(ca_file("root", "ca.crt")).content_string.strip()
    assert certs == [services, root]


@pytest.mark.parametrize("name", CAS)
def test_crl_parses_and_is_signed_by_its_ca(host, name):
    crl = ca_file(name, "crl.pem")
    text = host.check_output(f"openssl crl -in {crl} -noout -text")
    assert "Certificate Revocation List (CRL)" in text
    assert "X509v3 CRL Number" in text
    ok = host.run(f"openssl crl -in {crl} -CAfile {ca_file(name, 'ca.crt')} -noout")
    assert ok.rc == 0, ok.stderr
    assert "verify OK" in ok.stdout + ok.stderr
    other = "services" if name == "root" else "root"
    bad = host.run(f"openssl crl -in {crl} -CAfile {ca_file(other, 'ca.crt')} -noout")
    assert "verify OK" not in bad.stdout + bad.stderr


@pytest.mark.parametrize("name", CAS)
def test_crl_next_update_in_future_and_number_present(host, name):
    crl = ca_file(name, "crl.pem")
    next_update = openssl_date(host.check_output(f"openssl crl -in {crl} -noout -nextupdate"))
    days_left = (next_update - now(host)).total_seconds() / 86400
    long_lived = name == "root" and encrypted_root(host)
    # 90-day CRL for an encrypted CA, 7-day CRL for the ones the timer refreshes.
    assert (60 < days_left <= 90) if long_lived else (3 < days_left <= 8)
    number = host.check_output(f"openssl crl -in {crl} -noout -crlnumber")
    assert re.fullmatch(r"crlNumber=(0x)?[0-9A-Fa-f]+", number)


def test_public_dir_holds_copies_readable_by_all(host):
    public = host.file(PUBLIC)
    assert public.is_directory and public.mode == 0o755
    for name in CAS:
        pairs = {
            f"{name}.crt": "ca.crt",
            f"{name}-chain.pem": "chain.pem",
            f"{name}.crl.pem": "crl.pem",
        }
        for published, source in pairs.items():
            f = host.file(f"{PUBLIC}/{published}")
            assert f.mode == 0o644, published
            assert f.content_string == host.file(ca_file(name, source)).content_string, published
        der = host.run(f"openssl crl -inform DER -in {PUBLIC}/{name}.crl -noout -crlnumber")
        pem = host.run(f"openssl crl -in {ca_file(name, 'crl.pem')} -noout -crlnumber")
        assert der.rc == 0 and der.stdout == pem.stdout
    # No key material in the public directory.
    assert host.run(f"grep -rl 'PRIVATE KEY' {PUBLIC}").stdout == ""


def test_timer_active_and_enabled(host):
    assert host.check_output("systemctl is-active securestack-pki-crl.timer") == "active"
    assert host.check_output("systemctl is-enabled securestack-pki-crl.timer") == "enabled"
    timer = host.file("/etc/systemd/system/securestack-pki-crl.timer").content_string
    assert "Persistent=true" in timer
    assert "RandomizedDelaySec=" in timer


def test_service_is_sandboxed(host):
    props = host.check_output(
        "systemctl show securestack-pki-crl.service "
        "-p ProtectSystem -p NoNewPrivileges -p PrivateTmp -p PrivateNetwork -p ReadWritePaths"
    )
    assert "ProtectSystem=strict" in props
    assert "NoNewPrivileges=yes" in props
    assert "PrivateTmp=yes" in props
    assert "PrivateNetwork=yes" in props
    assert BASE in props and PUBLIC in props


def test_timer_covers_only_unencrypted_cas(host):
    unit = host.file("/etc/systemd/system/securestack-pki-crl.service").content_string
    assert f"--ca {BASE}/services " in unit
    assert (f"--ca {BASE}/root " in unit) is not encrypted_root(host)


def test_service_run_by_hand_succeeds(host):
    cmd = host.run("systemctl start securestack-pki-crl.service")
    assert cmd.rc == 0, cmd.stderr + host.run("journalctl -u securestack-pki-crl -n 30 --no-pager").stdout
    result = host.check_output("systemctl show securestack-pki-crl.service -p Result --value")
    assert result == "success"


def test_cli_rewrites_crl_only_when_due_and_service_publishes_it(host):
    crl = ca_file("services", "crl.pem")
    before = host.check_output(f"openssl crl -in {crl} -noout -crlnumber")
    # Not due (nextUpdate about 7 days away, renewal 3 days before): untouched.
    mtime = host.file(crl).mtime
    host.run_expect([0], f"{CLI} crl --ca {BASE}/services --valid-days 7 --renew-before-days 3")
    assert host.file(crl).mtime == mtime
    assert host.check_output(f"openssl crl -in {crl} -noout -crlnumber") == before
    # Forced: a new CRL with a higher number.
    host.run_expect([0], f"{CLI} crl --ca {BASE}/services --valid-days 7 --renew-before-days 3 --force")
    after = host.check_output(f"openssl crl -in {crl} -noout -crlnumber")
    assert int(after.split("=")[1], 16) > int(before.split("=")[1], 16)
    # The service copies the new CRL (PEM and DER) to the public directory.
    assert host.file(f"{PUBLIC}/services.crl.pem").content_string != host.file(crl).content_string
    host.run_expect([0], "systemctl start securestack-pki-crl.service")
    assert host.file(f"{PUBLIC}/services.crl.pem").content_string == host.file(crl).content_string
    der = host.check_output(f"openssl crl -inform DER -in {PUBLIC}/services.crl -noout -crlnumber")
    assert der == after


def test_cli_fails_on_bad_ca_path(host):
    cmd = host.run(f"{CLI} crl --ca /nonexistent/ca --valid-days 7 --renew-before-days 3")
    assert cmd.rc != 0
    assert cmd.stderr.strip() != ""
    assert "Traceback" not in cmd.stderr


# --- Where relying parties find the CRLs and issuers (CDP and AIA caIssuers) ---
# The role's default ca_crl_url_base: this host's publisher under its
# inventory name, http://<inventory_hostname>:8480. The container's name
# is its inventory name and resolves on the scenario's docker network.


def url_base(host) -> str:
    return f"http://{host.backend.get_hostname()}:8480"


def extension_text(host, pem_file: str) -> str:
    return host.check_output(f"openssl x509 -in {pem_file} -noout -ext crlDistributionPoints,authorityInfoAccess")


def uris(text: str, label: str) -> list[str]:
    """The URIs openssl prints as CRL distribution points ("crl") or as `CA Issuers`."""
    if label == "crl":
        return re.findall(r"(?<!Issuers - )URI:(\S+)", text)
    return re.findall(rf"{label} - URI:(\S+)", text)


def sign_probe(host, profile: str) -> str:
    """Sign a fresh CSR with the services CA (the engine package the role installs); the PEM's path."""
    work = host.check_output("mktemp -d")
    host.run_expect([0], f"openssl ecparam -name prime256v1 -genkey -noout -out {work}/key.pem")
    if profile == "server":
        request = "-subj /CN=probe.example.com -addext subjectAltName=DNS:probe.example.com"
    else:
        request = "-subj /CN=probe-client"
    host.run_expect([0], f"openssl req -new -key {work}/key.pem {request} -out {work}/csr.pem")
    script = (
        "from securestack_pki._pki_ca import CertificateAuthority, SignSpec; "
        f"csr = open('{work}/csr.pem').read(); "
        f"spec = SignSpec(csr=csr, profile='{profile}', name='molecule-probe-{profile}'); "
        f"result = CertificateAuthority.open('{BASE}/services').sign([spec]); "
        f"open('{work}/cert.pem', 'w').write(result[0].certificate)"
    )
    cmd = host.run(f'PYTHONPATH={ENGINE} python3 -c "{script}"')
    assert cmd.rc == 0, cmd.stderr
    return f"{work}/cert.pem"


def test_services_ca_certificate_names_the_roots_crl_and_certificate(host):
    text = extension_text(host, ca_file("services", "ca.crt"))
    assert uris(text, "crl") == [f"{url_base(host)}/root.crl"]
    assert uris(text, "CA Issuers") == [f"{url_base(host)}/root.cer"]


@pytest.mark.parametrize("profile", ["server", "client"])
def test_issued_certificates_name_the_services_crl_and_certificate(host, profile):
    text = extension_text(host, sign_probe(host, profile))
    assert uris(text, "crl") == [f"{url_base(host)}/services.crl"]
    assert uris(text, "CA Issuers") == [f"{url_base(host)}/services.cer"]


@pytest.mark.parametrize("name", CAS)
def test_the_urls_serve_the_der_crl_and_certificate(host, name):
    """curl what the certificates name, over plain HTTP, from the container: DER, and the right files."""
    work = host.check_output("mktemp -d")
    for leaf in ("crl", "cer"):
        cmd = host.run(f"curl -fsS -o {work}/{name}.{leaf} {url_base(host)}/{name}.{leaf}")
        assert cmd.rc == 0, cmd.stderr
    crl = host.run(f"openssl crl -inform DER -in {work}/{name}.crl -CAfile {ca_file(name, 'ca.crt')} -noout")
    assert crl.rc == 0 and "verify OK" in crl.stdout + crl.stderr
    served = host.check_output(f"openssl x509 -inform DER -in {work}/{name}.cer -outform PEM")
    assert served.strip() == host.file(ca_file(name, "ca.crt")).content_string.strip()
    # DER (a SEQUENCE, byte 0x30), not PEM (RFC 5280 4.2.1.13 and 4.2.2.1).
    for leaf in ("crl", "cer"):
        assert host.check_output(f"head -c 1 {work}/{name}.{leaf} | od -An -tx1").strip() == "30"
    assert host.file(f"{PUBLIC}/{name}.cer").mode == 0o644
