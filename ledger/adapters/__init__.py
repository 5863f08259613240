"""Adapters from external billing systems to ledger events (`ledger.adapters.stripe`)."""
