"""Alembic migrations of mailcase's schema."""
