"""The console's use cases: staff accounts, sign-in, tokens; the audit trail."""
