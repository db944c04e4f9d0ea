"""The console process: its HTTP API."""
