"""Conversion ledger: an example Afflux subscriber."""
