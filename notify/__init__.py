"""Notifications: webhook subscriptions, the outbox written with each case change, and the
worker that delivers it (signed POSTs, retried with backoff)."""
