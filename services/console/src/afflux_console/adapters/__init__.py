"""PostgreSQL tables, password hashing and one-time codes."""
