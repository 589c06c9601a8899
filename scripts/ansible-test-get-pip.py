"""Stand-in for the get-pip.py script that ansible-test downloads.

ansible-test bootstraps pip into each sanity test's virtual environment by
running a cached get-pip.py (~/.ansible/test/cache/get_pip_<version>.py) that
it downloads from a host this network does not reach. This stand-in does the
same job from what is here: it installs the pip that Python itself bundles
(ensurepip), then runs that pip with ansible-test's arguments, which install
the pinned pip version from PyPI. scripts/sanity.sh copies it into place.
"""

import ensurepip
import importlib
import os
import sys


def main() -> int:
    # ensurepip drops the PIP_* variables and hides pip's config files from
    # the process; the pip run below needs them (index, certificates).
    saved_environ = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    os.environ.clear()
    os.environ.update(saved_environ)
    importlib.invalidate_caches()
    from pip._internal.cli.main import main as pip_main  # noqa: PLC0415 (pip exists only after ensurepip)

    # get-pip.py takes pip install's arguments without the command, plus its
    # own --no-setuptools/--no-wheel (a new venv has neither anyway).
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    return pip_main(["install", *args])


if __name__ == "__main__":
    sys.exit(main())
