"""Imports every table module so that the metadata is complete (migrations, tests)."""

from __future__ import annotations

import core.models
import core.privacy
import dispatch.models
import events.models
import grid.models
import notify.models
import taxonomy.models
from core.db import metadata

__all__ = ["core", "dispatch", "events", "grid", "metadata", "notify", "taxonomy"]
