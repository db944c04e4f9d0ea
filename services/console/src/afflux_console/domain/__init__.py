"""Staff rules as plain Python: users and roles, sessions, API tokens, audit subjects."""
