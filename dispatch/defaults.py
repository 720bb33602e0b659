"""The default departments shipped with the package (the default catalogue routes to them)."""

from __future__ import annotations

import json
from importlib import resources


def default_departments() -> list[dict[str, str]]:
    data = json.loads(
        resources.files("dispatch").joinpath("data/departments.json").read_text("utf-8")
    )
    return [
        {"code": d["code"], "name": d["name"], "short_name": d["short_name"]}
        for d in data["departments"]
    ]
