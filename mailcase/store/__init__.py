"""Store: the database under everything.

The typed tables (``models``), the engine and sessions for SQLite and PostgreSQL
(``db``), and the schema's migrations (``migrate`` and the Alembic scripts in
``migrations``).

May import: nothing of mailcase's but itself. Every room above may import it.
"""
