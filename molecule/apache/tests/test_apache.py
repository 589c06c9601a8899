"""Testinfra checks of the securestack.pki.apache role (scenario ``apache``).

The checks are shared with the nginx scenario: molecule/resources/web/tests/web_checks.py,
which reads the server under test from the scenario's name.
"""

from web_checks import *  # noqa: F403 (the shared tests, listed in web_checks.__all__)
