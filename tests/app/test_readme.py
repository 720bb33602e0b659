"""The README names every setting and every error code, and nothing that is not one."""

from __future__ import annotations

import re

from core.errors import error_table
from core.settings import Settings
from tests.conftest import ROOT


def test_configuration_table_names_exactly_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for line in section.splitlines()
        if line.startswith("| `GRIDGOV_")
        for name in re.findall(r"`GRIDGOV_([A-Z0-9_]+)`", line.split(" | ", 1)[0])
    }
    settings = {name.upper() for name in Settings.model_fields}
    assert documented == settings, (
        f"undocumented: {sorted(settings - documented)}; not settings: "
        f"{sorted(documented - settings)}"
    )


def test_error_code_table_is_the_registry() -> None:
    """The README's table of error codes is `gridgov errors` (`core.errors.error_table`)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    table = "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))
    assert table == error_table()
