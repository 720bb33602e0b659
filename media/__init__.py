"""Attachments: photos uploaded by every channel, checked by content, stored content-addressed
on disk (the database keeps their metadata and which cases use them)."""
