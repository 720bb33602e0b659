"""Imports every table module so that the metadata is complete (migrations, tests)."""

from __future__ import annotations

import channels.open311.models
import channels.wechat.models
import channels.wechat.outbound_models
import core.models
import core.privacy
import dispatch.models
import events.models
import grid.models
import media.models
import notify.models
import surveillance.models
import taxonomy.models
from core.db import metadata

__all__ = [
    "channels",
    "core",
    "dispatch",
    "events",
    "grid",
    "media",
    "metadata",
    "notify",
    "surveillance",
    "taxonomy",
]
