"""Database: tables, engine/session factory, migrations."""
