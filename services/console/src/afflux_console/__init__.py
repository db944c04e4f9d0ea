"""Afflux console: the staff's accounts, roles, sessions and API tokens, and the audit trail."""
