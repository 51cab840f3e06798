"""Background classification jobs against real PostgreSQL and real worker processes."""
