"""Subscriptions through the admin API and the CLI."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from app.cli import main as cli
from tests.conftest import Api, OwnApp
from tests.notify.helpers import GRID, deliveries, report

HOOK = {"url": "http://10.0.0.8:9000/gridgov", "secret": "s3cret-for-the-hook-0001"}


def test_admin_adds_lists_and_removes_without_the_secret_echoed(api: Api) -> None:
    res = api.post("admin", "/v1/webhooks", {**HOOK, "department_code": "CGJ"})
    assert res.status_code == 201, res.text
    sub = res.json()
    assert sub["url"] == HOOK["url"]
    assert sub["department_code"] == "CGJ"
    assert sub["secret"] == "s3cr…"
    assert HOOK["secret"] not in res.text
    listed = api.get("admin", "/v1/webhooks")
    assert [s["id"] for s in listed.json()["items"]] == [sub["id"]]
    assert HOOK["secret"] not in listed.text
    gone = api.client.delete(f"/v1/webhooks/{sub['id']}", headers=api.headers("admin"))
    assert gone.status_code == 204
    assert api.get("admin", "/v1/webhooks").json()["items"] == []
    again = api.client.delete(f"/v1/webhooks/{sub['id']}", headers=api.headers("admin"))
    assert (again.status_code, again.json()["error"]) == (404, "webhook_not_found")


def test_only_admins_manage_webhooks(api: Api) -> None:
    for who in ("dispatcher", "dept-cgj"):
        assert api.post(who, "/v1/webhooks", HOOK).status_code == 403
        assert api.get(who, "/v1/webhooks").status_code == 403
    assert api.get("admin", "/v1/webhooks").json()["items"] == []


def test_bad_subscriptions_are_refused_with_a_code_and_store_nothing(api: Api) -> None:
    cases = [
        ({**HOOK, "url": "ftp://10.0.0.8/x"}, "invalid_webhook_url"),
        ({**HOOK, "url": "http:///nohost"}, "invalid_webhook_url"),
        ({**HOOK, "secret": "short"}, "weak_webhook_secret"),
        ({**HOOK, "department_code": "NOPE"}, "unknown_department"),
        ({**HOOK, "area_code": "440604999"}, "unknown_webhook_area"),
        ({**HOOK, "events": ["case.reported", "case.lost"]}, "unknown_event_type"),
    ]
    for body, code in cases:
        res = api.post("admin", "/v1/webhooks", body)
        assert (res.status_code, res.json()["error"]) == (422, code), body
    assert api.get("admin", "/v1/webhooks").json()["items"] == []


def test_cli_adds_lists_and_removes(own_app: OwnApp, demo_points: Any) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli,
        [
            "webhooks", "add", "--url", HOOK["url"], "--secret", HOOK["secret"],
            "--area", GRID[:9], "--events", "case.reported,case.escalated",
        ],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    sub_id = int(added.output.strip().splitlines()[-1])
    listed = runner.invoke(cli, ["webhooks", "list"])
    assert f'"id": {sub_id}' in listed.output
    assert HOOK["secret"] not in listed.output
    report(own_app.api, demo_points)
    assert [(d.subscription_id, e.type) for d, e in deliveries(own_app.api)] == [
        (sub_id, "case.reported")
    ]
    removed = runner.invoke(cli, ["webhooks", "remove", str(sub_id)])
    assert removed.exit_code == 0, removed.output
    # Its undelivered events are dropped (failed), and no new ones are written.
    assert [d.status for d, _ in deliveries(own_app.api)] == ["failed"]
    report(own_app.api, demo_points)
    assert len(deliveries(own_app.api)) == 1
    refused = runner.invoke(cli, ["webhooks", "add", "--url", "nope", "--secret", "x" * 20])
    assert refused.exit_code == 2
    assert "invalid_webhook_url" in refused.output


def test_a_removed_subscriptions_deliveries_cannot_be_retried(
    own_app: OwnApp, demo_points: Any
) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli, ["webhooks", "add", "--url", HOOK["url"], "--secret", HOOK["secret"]]
    )
    sub_id = int(added.output.strip().splitlines()[-1])
    report(own_app.api, demo_points)
    [(delivery, _)] = deliveries(own_app.api)
    assert runner.invoke(cli, ["webhooks", "remove", str(sub_id)]).exit_code == 0
    retried = runner.invoke(cli, ["outbox", "retry", str(delivery.id)])
    assert retried.exit_code == 2
    assert "webhook_not_found" in retried.output
    assert [d.status for d, _ in deliveries(own_app.api)] == ["failed"]
