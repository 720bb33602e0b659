"""The WeChat webhook (`POST /wechat`, safe mode) at a paced rate, every message sent several times.

The real app (`app.main:app_from_env`, no scheduler) under uvicorn with `--workers` processes
(default 2, one per core, as `gridgov serve --workers 2`: a copy of a message often reaches the
other process) on a freshly seeded PostGIS database (SQLite with --sqlite). With one process
the server's Python is the limit on a 2-core machine (~4.7 ms CPU a call, measured).
Residents each send a location and a description (a case); every message is sent `--copies`
times, as WeChat's retries and a copy racing in do: the second copy right behind the first (in
flight together), the last later.
Every message is built, signed and encrypted by wechatpy before the clock starts; the load
generator sends them on a fixed schedule (`--rate` per second, open loop: latency is counted
from each message's scheduled time, so a server falling behind shows in it), and afterwards
decrypts and checks every reply with wechatpy.

    .venv/bin/python bench/wechat.py [--quick] [--rate 200] [--seconds 30] [--copies 3]
                                     [--workers 2] [--sqlite]

"No message processed twice": `wechat_message` holds one row per distinct message, the
database one case and one report per resident, and every copy of a message got the same reply.
Prints one JSON object on stdout; progress on stderr. Target: the rate held, p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import xmltodict
from benchlib import emit, environment, log, percentiles_ms, seeded_database
from intake import start_server, stop_server
from sqlalchemy import text
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from core.db import make_engine
from grid.coords import wgs84_to_gcj02
from grid.demo_district import build_chancheng

TOKEN = "gridgovBenchToken2026"
APPID = "wx0bench0000000001"
# A 43-character EncodingAESKey (a 32-byte key), as the official account's console shows one.
AES_KEY = base64.b64encode(hashlib.sha256(b"gridgov-bench").digest()).decode().rstrip("=")
ACCOUNT = "gh_bench00000001"
TARGET_P99_MS = 200.0
DESCRIPTIONS = (
    "井盖丢失，路口有个窨井盖不见了，行人很危险",
    "小区门口垃圾堆积好几天没人清运，气味很大",
    "有人在人行道上占道经营摆摊卖水果",
    "下雨后路面积水严重，积水蚊虫多",
    "路灯不亮了，晚上巷子里一片漆黑",
    "共享单车乱停乱放堵住了消防通道",
    "河涌有死鱼漂浮，水面发黑发臭",
    "马路中间有一个大坑洞，电动车差点摔倒",
)


@dataclass(frozen=True)
class Send:
    """One HTTP call WeChat would make: which distinct message, which copy."""

    message: int
    copy: int
    params: dict[str, str]
    body: bytes


def _xml(fields: dict[str, Any]) -> str:
    return str(xmltodict.unparse({"xml": fields}, full_document=False))


def _signed(crypto: WeChatCrypto, xml: str, now: int) -> tuple[dict[str, str], bytes]:
    ts, nonce = str(now), uuid.uuid4().hex[:10]
    envelope = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]
    signer = WeChatSigner()
    signer.add_data(TOKEN, ts, nonce)
    params = {
        "signature": signer.signature,
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": envelope["MsgSignature"],
    }
    body = _xml({"ToUserName": ACCOUNT, "Encrypt": envelope["Encrypt"]}).encode()
    return params, body


def build_messages(residents: int, rng: np.random.Generator, now: int) -> list[str]:
    """Each resident's location then description (plaintext XML), the description of resident
    r coming after the locations of r … r + 49: conversations overlap as real ones do."""
    grids = build_chancheng().grids
    ids = itertools.count(int(now) * 1000)
    messages: list[str] = []
    texts: list[str] = []
    for r in range(residents):
        openid = f"o6_bench{r:06d}{uuid.uuid4().hex[:14]}"
        point = grids[int(rng.integers(len(grids)))].geometry.representative_point()
        lng, lat = wgs84_to_gcj02(point.x, point.y)
        messages.append(
            _xml(
                {
                    "ToUserName": ACCOUNT,
                    "FromUserName": openid,
                    "CreateTime": now,
                    "MsgType": "location",
                    "Location_X": f"{lat:.6f}",
                    "Location_Y": f"{lng:.6f}",
                    "Scale": "15",
                    "Label": "",
                    "MsgId": next(ids),
                }
            )
        )
        texts.append(
            _xml(
                {
                    "ToUserName": ACCOUNT,
                    "FromUserName": openid,
                    "CreateTime": now,
                    "MsgType": "text",
                    "Content": DESCRIPTIONS[int(rng.integers(len(DESCRIPTIONS)))],
                    "MsgId": next(ids),
                }
            )
        )
        if r >= 50:
            messages.append(texts[r - 50])
    messages.extend(texts[max(0, residents - 50) :])
    return messages


def schedule(messages: list[str], copies: int, now: int) -> list[Send]:
    """The calls in sending order: each message's first two copies together, the others
    spread over the next few dozen calls."""
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    slots: dict[int, list[Send]] = {}
    for m, xml in enumerate(messages):
        for c in range(copies):
            params, body = _signed(crypto, xml, now)
            at = m * copies + (c if c < 2 else 40 * c)
            slots.setdefault(at, []).append(Send(m, c, params, body))
    return [s for at in sorted(slots) for s in slots[at]]


@dataclass
class Outcome:
    send: Send
    status: int
    reply: str
    latency_s: float  # from the scheduled time
    service_s: float  # from the actual send


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol: the requests
    are bytes built before the clock starts, so the generator spends almost nothing per call
    (an httpx client cost more CPU per call than the server on a 2-core machine)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def request_bytes(port: int, send: Send) -> bytes:
    head = (
        f"POST /wechat?{urlencode(send.params)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: text/xml\r\nContent-Length: {len(send.body)}\r\n\r\n"
    )
    return head.encode() + send.body


async def drive(port: int, sends: list[Send], rate: float, connections: int) -> list[Outcome]:
    """Open loop: call i starts at t0 + i / rate (on the next free connection), whatever the
    earlier ones are doing."""
    requests = [request_bytes(port, s) for s in sends]
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    opened = [await Connection.open(port) for _ in range(connections)]
    for conn in opened:
        pool.put_nowait(conn)
    outcomes: list[Outcome] = []

    async def one(i: int, due: float) -> None:
        conn = await pool.get()
        started = time.perf_counter()
        try:
            status, body = await conn.call(requests[i])
            text_body = body.decode()
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            status, text_body = 0, repr(exc)
            conn.close()
            conn = await Connection.open(port)
        done = time.perf_counter()
        pool.put_nowait(conn)
        outcomes.append(Outcome(sends[i], status, text_body, done - due, done - started))

    tasks = []
    t0 = time.perf_counter() + 0.2
    for i in range(len(sends)):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    for conn in opened:
        conn.close()
    return outcomes


def read_reply(body: str) -> str:
    """The reply's text as WeChat reads it (wechatpy decrypts, checks and parses it)."""
    if body == "success":
        return body
    envelope = xmltodict.parse(body)["xml"]
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    xml = crypto.decrypt_message(
        body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
    )
    return str(parse_message(xml).content)


def database_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:

            def one(sql: str) -> int:
                return int(conn.execute(text(sql)).scalar_one())

            return {
                "wechat_message_rows": one("SELECT count(*) FROM wechat_message"),
                "messages_that_filed_a_case": one(
                    "SELECT count(*) FROM wechat_message WHERE case_id IS NOT NULL"
                ),
                "wechat_cases": one("SELECT count(*) FROM gg_case WHERE channel = 'wechat'"),
                "wechat_reports": one("SELECT count(*) FROM report WHERE channel = 'wechat'"),
                "residents_with_more_than_one_report": one(
                    "SELECT count(*) FROM (SELECT reporter_identity FROM report "
                    "WHERE channel = 'wechat' GROUP BY reporter_identity "
                    "HAVING count(*) > 1) AS x"
                ),
            }
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s instead of 30 s")
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=None, help="length of the run")
    parser.add_argument("--copies", type=int, default=3, help="times each message is sent")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostGIS")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="uvicorn worker processes, as `gridgov serve --workers` (1: server CPU counted)",
    )
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    copies = max(1, args.copies)
    calls = int(args.rate * seconds)
    residents = max(1, calls // (2 * copies))
    started = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(20261202))

    with seeded_database("wechat", postgres=not args.sqlite) as url:
        tmp = Path(tempfile.mkdtemp(prefix="gridgov_bench_wechat_"))
        env = {
            "GRIDGOV_WECHAT_TOKEN": TOKEN,
            "GRIDGOV_WECHAT_APPID": APPID,
            "GRIDGOV_WECHAT_AES_KEY": AES_KEY,
        }
        extra = ["--workers", str(args.workers)] if args.workers > 1 else []
        server = start_server(
            "wechat", "app.main:app_from_env", "/wechat", url, tmp, None, extra, env
        )
        try:
            now = int(time.time())
            log(f"building {residents} residents' messages x {copies} copies with wechatpy...")
            sends = schedule(build_messages(residents, rng, now), copies, now)
            log(f"sending {len(sends)} calls at {args.rate:g}/s")
            cpu0 = server.cpu_seconds()
            wall0 = time.perf_counter()
            outcomes = asyncio.run(drive(server.port, sends, args.rate, args.connections))
            wall = time.perf_counter() - wall0
            cpu1 = server.cpu_seconds()
        finally:
            stop_server(server)
            server_log = server.stderr_path.read_text(errors="replace")[-2000:]
            shutil.rmtree(tmp, ignore_errors=True)
        counts = database_counts(url)

    ok = [o for o in outcomes if o.status == 200]
    replies: dict[int, set[str]] = {}
    unreadable = 0
    for o in ok:
        try:
            replies.setdefault(o.send.message, set()).add(read_reply(o.reply))
        except Exception:  # a reply WeChat could not read
            unreadable += 1
    distinct = len({s.message for s in sends})
    differing = sum(1 for r in replies.values() if len(r) > 1)
    filed_replies = sum(1 for r in replies.values() if any("案件编号" in x for x in r))
    latency = percentiles_ms([o.latency_s for o in outcomes], 50, 95, 99)
    service = percentiles_ms([o.service_s for o in outcomes], 50, 99)
    once = (
        counts["wechat_message_rows"] == distinct
        and counts["wechat_cases"] == residents
        and counts["wechat_reports"] == residents
        and counts["messages_that_filed_a_case"] == residents
        and counts["residents_with_more_than_one_report"] == 0
        and differing == 0
        and filed_replies == residents
    )
    achieved = len(outcomes) / wall if wall else 0.0
    emit(
        {
            "bench": "wechat",
            "database": "sqlite" if args.sqlite else "postgis",
            "environment": environment(),
            "config": {
                "rate_per_s": args.rate,
                "seconds": seconds,
                "copies_per_message": copies,
                "residents": residents,
                "distinct_messages": distinct,
                "calls": len(sends),
                "connections": args.connections,
                "server_workers": args.workers,
                "mode": "safe (aes)",
            },
            "achieved_calls_per_s": round(achieved, 1),
            "latency_from_schedule": latency,
            "latency_from_send": service,
            # The first copy does the work; the second waits for it (in flight together).
            "latency_by_copy": {
                str(c): percentiles_ms([o.latency_s for o in outcomes if o.send.copy == c], 50, 99)
                for c in range(copies)
            },
            "non_200": len(outcomes) - len(ok),
            "non_200_examples": [
                f"{o.status}: {o.reply[:160]}" for o in outcomes if o.status != 200
            ][:5],
            "unreadable_replies": unreadable,
            "messages_with_differing_replies": differing,
            "server_cpu_ms_per_call": (
                round(1000 * (cpu1 - cpu0) / len(outcomes), 3)
                if cpu0 is not None and cpu1 is not None and outcomes and args.workers == 1
                else None
            ),
            "rows": counts,
            "processed_once": once,
            "server_stderr": server_log or None,
            "target_p99_ms": TARGET_P99_MS,
            "target_met": bool(
                once
                and unreadable == 0
                and len(ok) == len(outcomes)
                and latency["p99_ms"] < TARGET_P99_MS
                and achieved >= 0.95 * args.rate
            ),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
