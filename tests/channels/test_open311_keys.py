"""`gridgov open311 keys` (issue once, keep only a hash, list, revoke), migration 0015 both
ways, and the XML writer on any text."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from typing import Any

import defusedxml.ElementTree as SafeET
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from app.cli import main
from app.migrate import schema_drift
from app.schema import metadata
from channels.open311.render import to_json, to_xml
from tests.channels.open311 import errors_of, form, post
from tests.conftest import ROOT, OwnApp

Point = Callable[[str], tuple[float, float]]
TABLES = ("open311_key", "open311_request")


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_keys_add_prints_the_key_last_and_stores_only_its_hash(
    own_app: OwnApp, demo_points: Point
) -> None:
    added = _run("open311", "keys", "add", "--name", "fix-my-street")
    assert added.exit_code == 0, added.output
    api_key = added.output.strip().splitlines()[-1]
    assert len(api_key) >= 40
    with own_app.engine.connect() as conn:
        (stored,) = conn.execute(sa.text("SELECT name, key_hash, key_prefix FROM open311_key"))
    assert stored.name == "fix-my-street"
    assert stored.key_hash == hashlib.sha256(api_key.encode()).hexdigest()
    assert api_key not in "".join(str(v) for v in stored)

    listed = _run("open311", "keys", "list")
    assert listed.exit_code == 0
    (item,) = json.loads(listed.output)
    assert (item["name"], item["active"], item["key_prefix"]) == (
        "fix-my-street",
        True,
        api_key[:8],
    )
    assert api_key not in listed.output

    client = own_app.api.client
    assert post(client, "json", form(demo_points, api_key=api_key)).status_code == 201

    revoked = _run("open311", "keys", "revoke", str(item["id"]))
    assert revoked.exit_code == 0
    assert json.loads(_run("open311", "keys", "list").output)[0]["active"] is False
    refused = post(client, "xml", form(demo_points, api_key=api_key, description="另一件事"))
    assert refused.status_code == 403
    assert errors_of(refused, "xml")[0]["code"] == 403


def test_keys_refuse_bad_names_and_unknown_ids(own_app: OwnApp) -> None:
    bad = _run("open311", "keys", "add", "--name", "my app")
    assert bad.exit_code == 2
    assert "open311_invalid_app_name" in bad.output
    missing = _run("open311", "keys", "revoke", "4242")
    assert missing.exit_code == 2
    assert "open311_key_not_found" in missing.output
    assert json.loads(_run("open311", "keys", "list").output) == []


def _migration() -> Any:
    path = ROOT / "migrations" / "versions" / "0015_open311.py"
    spec = importlib.util.spec_from_file_location("migration_0015", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _context(conn: sa.Connection) -> MigrationContext:
    """As migrations/env.py configures it: the metadata's naming convention names constraints."""
    return MigrationContext.configure(conn, opts={"target_metadata": metadata})


def _open311_drift(engine: sa.Engine) -> list[Any]:
    return [d for d in schema_drift(engine) if any(t in str(d) for t in TABLES)]


def test_migration_0015_matches_the_models_and_goes_both_ways(own_app: OwnApp) -> None:
    engine = own_app.engine
    assert _open311_drift(engine) == []
    migration = _migration()
    with engine.begin() as conn:
        with Operations.context(_context(conn)):
            migration.downgrade()
        assert not any(sa.inspect(conn).has_table(t) for t in TABLES)
    with engine.begin() as conn:
        with Operations.context(_context(conn)):
            migration.upgrade()
    engine.dispose()
    assert all(sa.inspect(engine).has_table(t) for t in TABLES)
    assert _open311_drift(engine) == []


@given(st.text())
def test_any_text_makes_well_formed_xml_and_json(text: str) -> None:
    document = [{"description": text, "lat": 23.0, "metadata": False, "zipcode": None}]
    root = SafeET.fromstring(to_xml("service_requests", document))
    (request,) = root
    assert [c.tag for c in request] == ["description", "lat", "metadata", "zipcode"]
    assert request.findtext("metadata") == "false"
    assert request.findtext("zipcode") == ""
    # Characters XML cannot carry become U+FFFD; a parser reads line ends as \n.
    expected = "".join(ch if _xml_char(ch) else "\ufffd" for ch in text)
    expected = expected.replace("\r\n", "\n").replace("\r", "\n")
    assert (request.findtext("description") or "") == expected
    assert json.loads(to_json(document))[0]["description"] == text


def _xml_char(ch: str) -> bool:
    code = ord(ch)
    return (
        ch in "\t\n\r"
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )
