"""`python -m securestack_portal` is the `securestack-portal` command."""

from .cli import main

main()
