"""Entry point: python3 -m securestack_pki crl --ca DIR ..."""

from ._pki_cli import main

raise SystemExit(main())
