"""Alembic's script directory for the state store's schema (see state/schema.py)."""
