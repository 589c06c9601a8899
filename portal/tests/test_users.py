"""Roles in the database: only an admin changes them; the audit log holds who did what, when."""

from __future__ import annotations

import json

import pytest

from conftest import ADMIN, Harness

RITA = "CN=Rita Requester,O=SecureStack"


def test_an_admin_names_an_approver_before_they_first_sign_in(portal: Harness) -> None:
    admin = portal.client(portal.person(ADMIN))
    response = admin.submit("/users", "/users", {"subject": RITA, "role": "approver"})
    assert response.status_code == 302
    rita = portal.client(portal.person(RITA))
    assert rita.api("get", "/api/v1/me").json["role"] == "approver"
    event = next(e for e in portal.rows("audit_events") if e["action"] == "user.role")
    assert event["actor"] == ADMIN and event["target"] == RITA
    assert json.loads(event["detail"]) == {"before": None, "role": "approver"}
    assert event["at"] and event["actor_serial"]


@pytest.mark.parametrize("subject", ["O=SecureStack,CN=\\#hash\\ ", "CN=x\\\\41y,O=SecureStack"])
def test_an_admin_names_an_approver_whose_subject_has_escapes(portal: Harness, subject: str) -> None:
    """Issue 12, finding 7: the subject typed into /users keeps its escapes (an escaped trailing space,
    a backslash before hex digits), so the role lands on the person who signs in with that subject."""
    admin = portal.client(portal.person(ADMIN))
    response = admin.submit("/users", "/users", {"subject": subject, "role": "approver"})
    assert response.status_code == 302, response.text
    person = portal.client(portal.person(subject))
    assert person.api("get", "/api/v1/me").json["role"] == "approver"


@pytest.mark.parametrize(
    ("subject", "role", "message"),
    [
        ("not a dn", "approver", "is not a distinguished name"),
        (RITA, "superuser", "Not a valid choice"),
        (ADMIN, "requester", "cannot take their own admin role away"),
    ],
)
def test_bad_role_changes_are_refused(portal: Harness, subject: str, role: str, message: str) -> None:
    admin = portal.client(portal.person(ADMIN))
    response = admin.submit("/users", "/users", {"subject": subject, "role": role})
    assert response.status_code in (400, 403) and message in response.text
    assert {u["subject"]: u["role"] for u in portal.rows("users")} == {ADMIN: "admin"}


def test_only_admins_manage_users_and_approvers_read_the_audit_log(portal: Harness) -> None:
    approver = portal.client(portal.person("CN=Arno,O=SecureStack", role="approver"))
    requester = portal.client(portal.person(RITA))
    assert approver.get("/users").status_code == 403
    assert requester.get("/users").status_code == 403
    assert requester.get("/audit").status_code == 403
    page = approver.get("/audit")
    assert page.status_code == 200 and "user.first_seen" in page.text and "CN=Arno,O=SecureStack" in page.text


def test_the_audit_log_pages(portal: Harness) -> None:
    import sqlite3

    admin = portal.client(portal.person(ADMIN))
    admin.get("/")
    with sqlite3.connect(portal.directory / "portal.sqlite3") as db:
        db.executemany(
            "INSERT INTO audit_events (at, actor, actor_serial, action, target, detail, remote_addr)"
            " VALUES ('2026-01-01 00:00:00', 'CN=Someone', '', 'test.event', ?, '', '')",
            [(f"n{i}",) for i in range(100)],
        )
    first = admin.get("/audit").text
    assert "Older" in first and "Newer" not in first and "n99" in first and "user.first_seen" not in first
    second = admin.get("/audit?page=2").text
    assert "Newer" in second and "Older" not in second and "user.first_seen" in second


def test_a_user_created_by_a_concurrent_first_request_is_used_not_a_500(portal: Harness) -> None:
    """Two first requests of one person race: the loser's insert fails on the unique subject and it
    takes the winner's row (before: HTTP 500). The race is made certain by hiding the row from the
    loser's first read."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from securestack_portal import services
    from securestack_portal.identity import Identity

    rita = portal.person(RITA)
    assert portal.client(rita).api("get", "/api/v1/me").json["role"] == "requester"  # the winner
    engine = create_engine(f"sqlite:///{portal.directory / 'portal.sqlite3'}")
    with Session(engine) as session:
        real_scalars = session.scalars
        calls = []

        def first_read_misses(statement, *args, **kwargs):
            result = real_scalars(statement, *args, **kwargs)
            calls.append(statement)
            if len(calls) == 1:
                assert result.one_or_none() is not None  # the row is there: the loser just did not see it
                return real_scalars(statement.where(False), *args, **kwargs)
            return result

        session.scalars = first_read_misses  # type: ignore[method-assign]
        identity = Identity(subject=RITA, serial=rita.serial, certificate=None)  # type: ignore[arg-type]
        actor = services.user_for(session, identity, (), "127.0.0.1")
    assert actor.user.subject == RITA and actor.user.role == "requester"
    assert [u["subject"] for u in portal.rows("users")].count(RITA) == 1
    assert [e["action"] for e in portal.rows("audit_events") if e["target"] == RITA] == ["user.first_seen"]
