"""The kernel every package may import: database session, settings, errors, accounts and actors,
text rules, the transaction queue and per-process caches. It imports no other gridgov package."""
