# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The `packages` module's decisions: when apt's lists are refreshed, what is installed, what is refused.

A fake apt stands for dpkg-query, apt-cache and apt-get: an archive of packages, the lists the host
fetched from it, and what dpkg has installed. The real commands run in every molecule scenario, on
images built without package lists."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.securestack.pki.plugins.module_utils._debian_packages import (
    PackagesError,
    check_names,
    ensure,
    lists_age,
)


class FakeApt:
    def __init__(self, archive, lists=(), installed=(), update_failures=0):
        self.archive = set(archive)
        self.lists = set(lists)
        self.dpkg = set(installed)
        self.update_failures = update_failures
        self.calls = []

    def __call__(self, argv, environ):
        self.calls.append(argv[0] if argv[0] != "apt-get" else f"apt-get {argv[1]}")
        names = list(argv[argv.index("--") + 1 :]) if "--" in argv else []
        if argv[0] == "dpkg-query":
            out = "".join(f"{n}\t{n}\tii \n" for n in names if n in self.dpkg)
            return (0 if all(n in self.dpkg for n in names) else 1, out, "")
        if argv[0] == "apt-cache":
            out = ""
            for n in names:
                if n in self.lists:
                    out += f"{n}:\n  Installed: (none)\n  Candidate: 1.0-1\n  Version table:\n"
            return 0, out, "".join(f"N: Unable to locate package {n}\n" for n in names if n not in self.lists)
        if argv[:2] == ["apt-get", "update"]:
            assert environ["DEBIAN_FRONTEND"] == "noninteractive"
            if self.update_failures:
                self.update_failures -= 1
                return 0, "", "W: Failed to fetch http://mirror/dists/x/InRelease  Could not connect\n"
            self.lists = set(self.archive)
            return 0, "Reading package lists...\n", ""
        if argv[:2] == ["apt-get", "install"]:
            assert "Dpkg::Options::=--force-confold" in argv
            missing = [n for n in names if n not in self.lists]
            if missing:
                return 100, "", f"E: Unable to locate package {missing[0]}\n"
            self.dpkg.update(names)
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")


ARCHIVE = {"nginx-light", "ssl-cert", "mariadb-server", "curl"}


def test_everything_installed_reads_nothing_else():
    apt = FakeApt(ARCHIVE, installed=["nginx-light", "ssl-cert"])
    done = ensure(["nginx-light", "ssl-cert"], apt, max_age=3600, lock_timeout=5, check_mode=False, age=None)
    assert done.missing == [] and not done.refresh
    assert apt.calls == ["dpkg-query"]


def test_empty_lists_are_refreshed_before_installing():
    """The failure of a fresh image: lists empty, directory new. apt's cache_valid_time saw it as fresh."""
    apt = FakeApt(ARCHIVE)
    done = ensure(["mariadb-server"], apt, max_age=3600, lock_timeout=5, check_mode=False, age=None)
    assert done.missing == ["mariadb-server"] and done.refresh
    assert done.reason == "the package lists are empty"
    assert "apt-get update" in apt.calls and apt.calls.index("apt-get update") < apt.calls.index("apt-get install")
    assert "mariadb-server" in apt.dpkg


def test_lists_without_the_package_are_refreshed():
    apt = FakeApt(ARCHIVE, lists=["curl"])
    done = ensure(["curl", "nginx-light"], apt, max_age=3600, lock_timeout=5, check_mode=False, age=10)
    assert done.refresh and done.unknown == ["nginx-light"]
    assert done.missing == ["curl", "nginx-light"] and {"curl", "nginx-light"} <= apt.dpkg


def test_fresh_lists_that_offer_the_package_are_not_refreshed():
    apt = FakeApt(ARCHIVE, lists=ARCHIVE)
    done = ensure(["curl"], apt, max_age=3600, lock_timeout=5, check_mode=False, age=10)
    assert not done.refresh and "apt-get update" not in apt.calls and "curl" in apt.dpkg


def test_old_lists_are_refreshed():
    apt = FakeApt(ARCHIVE, lists=ARCHIVE)
    done = ensure(["curl"], apt, max_age=3600, lock_timeout=5, check_mode=False, age=7200)
    assert done.refresh and "7200 s old" in done.reason and "apt-get update" in apt.calls


def test_check_mode_predicts_and_changes_nothing():
    apt = FakeApt(ARCHIVE)
    done = ensure(["nginx-light", "curl"], apt, max_age=3600, lock_timeout=5, check_mode=True, age=None)
    assert done.missing == ["nginx-light", "curl"] and done.refresh
    assert apt.dpkg == set() and apt.lists == set()
    assert "apt-get update" not in apt.calls and "apt-get install" not in apt.calls


def test_unknown_package_is_refused_after_one_refresh_and_nothing_installed():
    apt = FakeApt(ARCHIVE)
    with pytest.raises(PackagesError, match=r"no package no-such-thing in apt's package lists, even after refreshing"):
        ensure(["curl", "no-such-thing"], apt, max_age=3600, lock_timeout=5, check_mode=False, age=None)
    assert apt.calls.count("apt-get update") == 1
    assert "apt-get install" not in apt.calls and apt.dpkg == set()


def test_failed_refresh_is_retried_then_reported(monkeypatch):
    apt = FakeApt(ARCHIVE, update_failures=5)
    pauses = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    with pytest.raises(PackagesError, match=r"apt-get update failed 3 times: W: Failed to fetch"):
        ensure(["curl"], apt, max_age=3600, lock_timeout=5, check_mode=False, age=None)
    assert apt.calls.count("apt-get update") == 3 and pauses == [2.0, 4.0]
    assert apt.dpkg == set()


def test_a_refresh_that_fails_once_succeeds_on_the_retry(monkeypatch):
    apt = FakeApt(ARCHIVE, update_failures=1)
    monkeypatch.setattr(time, "sleep", lambda _: None)
    ensure(["curl"], apt, max_age=3600, lock_timeout=5, check_mode=False, age=None)
    assert apt.calls.count("apt-get update") == 2 and "curl" in apt.dpkg


@pytest.mark.parametrize(
    "bad", ["nginx=1.22", "Nginx", "-o", "a", "nginx/bookworm-backports", "x y", "", "nginx\n", "curl\n-o"]
)
def test_names_apt_would_read_as_something_else_are_refused(bad):
    apt = FakeApt(ARCHIVE)
    with pytest.raises(PackagesError, match=r"not a Debian package name"):
        ensure(["curl", bad], apt, max_age=3600, lock_timeout=5, check_mode=False, age=None)
    assert apt.calls == []


def test_names_are_kept_once_in_order():
    assert check_names(["curl", "libc6:amd64", "curl", "g++"]) == ["curl", "libc6:amd64", "g++"]


def test_lists_age_reads_the_indexes_not_the_directory(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    stamp = tmp_path / "stamp"
    now = time.time()
    assert lists_age(str(lists), str(stamp), now) is None  # a new, empty directory: no lists at all
    (lists / "lock").write_text("")
    (lists / "partial").mkdir()
    assert lists_age(str(lists), str(stamp), now) is None
    index = lists / "deb.example_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
    index.write_text("")
    os.utime(index, (now - 5000, now - 5000))
    assert 4990 < lists_age(str(lists), str(stamp), now) < 5010
    stamp.write_text("")
    os.utime(stamp, (now - 100, now - 100))
    assert 90 < lists_age(str(lists), str(stamp), now) < 110
