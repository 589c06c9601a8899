"""Testinfra checks of the securestack.pki.nginx role (scenario ``nginx``).

The checks are shared with the apache scenario: molecule/resources/web/tests/web_checks.py,
which reads the server under test from the scenario's name.
"""

import web_checks

# The shared tests (web_checks.__all__) become this module's, for pytest to collect.
globals().update({name: getattr(web_checks, name) for name in web_checks.__all__})
