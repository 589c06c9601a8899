"""Alembic migrations of the portal's database (run by `securestack-portal db upgrade`)."""
