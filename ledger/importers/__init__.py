"""Importers: turn files from other tools into ledger events (nothing here writes to a ledger)."""
