"""aerich migrations, one location per SQL dialect (PostgreSQL and the SQLite default)."""
