# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The web tier forwards the Host the browser sent, port included, and the portal trusts the web tier's names.

The real templates of the nginx, Apache and portal roles, rendered with Ansible's
templating and each role's own defaults and vars (molecule's web scenarios prove
the same through real servers: web_checks.py).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLES = Path(__file__).resolve().parents[3] / "roles"


def render(role: str, template: str, **variables: object) -> str:
    values: dict = {"ansible_managed": "managed", "inventory_hostname": "web1", "groups": {"web": ["web1"]}}
    # Defaults, then the OS variables of Debian 12 (as the roles load them), then the role's vars.
    for path in ("defaults/main.yml", "vars/Debian.yml", "vars/Debian_12.yml", "vars/main.yml"):
        if (ROLES / role / path).exists():
            values.update(yaml.safe_load((ROLES / role / path).read_text()) or {})
    values.update(variables)
    # Role files are trusted templates (as Ansible treats them); so are the values read from them.
    values = {key: _trusted(value) for key, value in values.items()}
    templar = Templar(loader=DataLoader(), variables=values)
    return templar.template(trust_as_template((ROLES / role / "templates" / template).read_text()))


def _trusted(value: object) -> object:
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    return value


def proxied_headers(conf: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*proxy_set_header\s+(\S+)\s+([^;]+);", conf, re.M))


def test_nginx_forwards_the_host_the_browser_sent_with_its_port() -> None:
    conf = render(
        "nginx",
        "nginx.conf.j2",
        nginx_tls_profile="intermediate",
        nginx_backend_url="https://app1:8443",
        nginx_backend_ca_file="/etc/securestack-pki/ca-bundle.pem",
        nginx_client_ca="users",
        nginx_client_ca_chain=["root"],
        __nginx_issuer_dns=["CN=SecureStack Users CA,O=SecureStack"],  # set by tasks/certificates.yml
    )
    headers = proxied_headers(conf)
    # $http_host is the browser's Host header (localhost:8443 behind the demo's port-forward);
    # $host drops the port, $server_port is nginx's own 443.
    assert headers["Host"] == "$http_host"
    assert headers["X-Forwarded-Host"] == "$http_host"
    assert headers["X-Forwarded-Proto"] == "https"


def test_apache_lets_mod_proxy_forward_the_browsers_host() -> None:
    conf = render(
        "apache",
        "securestack.conf.j2",
        apache_tls_profile="intermediate",
        apache_backend_url="https://app1:8443",
        apache_backend_ca_file="/etc/securestack-pki/ca-bundle.pem",
        apache_client_ca="users",
        apache_client_ca_chain=["root"],
        __apache_issuer_dns=["CN=SecureStack Users CA,O=SecureStack"],  # set by tasks/certificates.yml
    )
    portal = conf.split("<VirtualHost *:443>", 1)[1]
    # mod_proxy's X-Forwarded-Host is the browser's Host header, port included; the client's copies go first.
    assert re.search(r"^\s*ProxyAddHeaders on$", portal, re.M)
    assert re.search(r"^\s*RequestHeader unset X-Forwarded-Host early$", portal, re.M)
    assert re.search(r"^\s*ProxyPreserveHost off$", portal, re.M)
    assert not re.search(r"^\s*RequestHeader set X-Forwarded-Host", portal, re.M)


PORTAL_VARS = {
    "inventory_hostname": "app1",
    "portal_database_type": "sqlite",
    "__portal_proxy_issuer": "CN=SecureStack Services CA,O=SecureStack",
    "groups": {"web": ["web1", "web2"], "db": ["db1"], "ca": ["ca1"]},
}


def portal_toml(**variables: object) -> dict:
    return tomllib.loads(render("portal", "portal.toml.j2", **{**PORTAL_VARS, **variables}))


def test_the_portal_trusts_the_web_tiers_names_by_default() -> None:
    hostvars = {"web1": {"nginx_server_names": ["web1", "Portal.Example.org", "localhost"]}, "web2": {}}
    config = portal_toml(hostvars=hostvars)
    assert config["web"]["trusted_hosts"] == ["web1", "portal.example.org", "localhost", "web2"]


def test_the_portal_trusts_what_portal_trusted_hosts_says() -> None:
    config = portal_toml(hostvars={"web1": {}, "web2": {}}, portal_trusted_hosts=["portal.example.org:8443"])
    assert config["web"]["trusted_hosts"] == ["portal.example.org:8443"]


@pytest.mark.parametrize("variable", ["nginx_server_names", "apache_server_names"])
def test_either_servers_names_count(variable: str) -> None:
    config = portal_toml(hostvars={"web1": {variable: ["www.example.org"]}, "web2": {}})
    assert config["web"]["trusted_hosts"] == ["web1", "www.example.org", "web2"]
