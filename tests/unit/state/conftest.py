"""The store's suite runs on both backends: SQLite (a state directory) and PostgreSQL
(``db_url`` and ``open_store`` in tests/conftest.py)."""
