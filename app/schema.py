"""Imports every table module so that the metadata is complete (migrations, tests)."""

from __future__ import annotations

import app.models
import app.privacy
import dispatch.models
import events.models
import grid.models
import taxonomy.models
from app.db import metadata

__all__ = ["app", "dispatch", "events", "grid", "metadata", "taxonomy"]
