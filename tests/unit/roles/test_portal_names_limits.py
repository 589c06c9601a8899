"""The portal role's [names] and [limits] (issue 12, findings 4 and 9): rendered from the role's variables,
parsed as TOML (the portal's parser of them is tested in portal/tests/test_review12.py)."""

from __future__ import annotations

from test_forwarded_host import portal_toml


def test_the_defaults_permit_e_mail_only_and_set_quotas() -> None:
    config = portal_toml(hostvars={"web1": {}, "web2": {}})
    assert config["names"] == {"email_domains": [], "dns_domains": [], "ip_ranges": []}
    assert config["limits"] == {"max_pending_requests": 10, "generations_per_hour": 10}


def test_the_variables_reach_the_configuration() -> None:
    config = portal_toml(
        hostvars={"web1": {}, "web2": {}},
        portal_email_domains=["example.org"],
        portal_dns_domains=["hosts.example.org"],
        portal_ip_ranges=["10.0.0.0/8"],
        portal_max_pending_requests=3,
        portal_generations_per_hour=4,
    )
    assert config["names"] == {
        "email_domains": ["example.org"],
        "dns_domains": ["hosts.example.org"],
        "ip_ranges": ["10.0.0.0/8"],
    }
    assert config["limits"] == {"max_pending_requests": 3, "generations_per_hour": 4}
