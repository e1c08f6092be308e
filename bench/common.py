"""Shared by the benchmarks: scratch PostgreSQL databases, JSON-lines output, a workload.

Output convention (DESIGN.md, Benchmarks): progress lines go to stderr, one JSON object per line
goes to stdout, the last lines being the results.
"""

from __future__ import annotations

import heapq
import random
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import orjson
import psycopg
from psycopg import sql

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 5
MAX_ORDERS = 1_000_000
CHINA = ZoneInfo("Asia/Shanghai")

Traffic = Iterable[tuple[dict[str, Any], datetime]]


# Output -------------------------------------------------------------------------------------


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(record).decode() + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Databases ----------------------------------------------------------------------------------


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name``."""
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***", 1)))


def server_problem(server_url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(server_url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return None


def _admin(server_url: str, statement: sql.Composed) -> None:
    with psycopg.connect(server_url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def scratch_database(server_url: str, name: str) -> Iterator[str]:
    """Create database ``name`` (dropping a leftover of the same name first), yield its URL,
    drop it on the way out whatever happened."""
    ident = sql.Identifier(name)
    _admin(server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    _admin(server_url, sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        yield database_url(server_url, name)
    finally:
        _admin(server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        found = row.fetchone()
    return int(found[0]) if found else 0


# Workload -----------------------------------------------------------------------------------


def traffic(orders: int, seed: int) -> tuple[Traffic, str]:
    """The demo's traffic generator when it exists, else ours; and which one it was."""
    try:
        from ledger.demo.traffic import generate_traffic  # type: ignore[import-not-found]
    except ImportError:
        return generate_orders(orders, seed), "bench.common.generate_orders"
    return generate_traffic(orders, seed), "ledger.demo.traffic.generate_traffic"


def write_jsonl(path: Path, commands: Traffic) -> tuple[int, int]:
    """Write ``{...command, "at": ISO time}`` lines; return (lines, bytes)."""
    lines = 0
    with path.open("wb") as out:
        for command, at in commands:
            out.write(orjson.dumps({**command, "at": at.isoformat()}) + b"\n")
            lines += 1
        size = out.tell()
    return lines, size


_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁"
    "谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鑫宇浩然子涵欣怡梓轩雨桐"
)
_PLACES = (
    ("CN-BJ", "北京市", ("朝阳区", "海淀区", "东城区", "丰台区")),
    ("CN-SH", "上海市", ("浦东新区", "徐汇区", "静安区", "闵行区")),
    ("CN-GD", "广东省深圳市", ("南山区", "福田区", "宝安区", "龙岗区")),
    ("CN-ZJ", "浙江省杭州市", ("西湖区", "余杭区", "滨江区", "拱墅区")),
    ("CN-JS", "江苏省南京市", ("鼓楼区", "玄武区", "江宁区", "秦淮区")),
    ("CN-SC", "四川省成都市", ("武侯区", "锦江区", "高新区", "青羊区")),
)
_ROADS = ("人民路", "中山路", "解放路", "建设路", "和平路", "长江路", "科技园路", "世纪大道")
_SKUS = (
    ("PHONE-14", 399900),
    ("PHONE-14-PRO", 599900),
    ("BAND-8", 24900),
    ("EARBUDS-4", 39900),
    ("PAD-6", 199900),
    ("CHARGER-67W", 14900),
    ("ROUTER-AX3000", 29900),
    ("KETTLE-2", 9900),
)
_METHODS = ("alipay", "wechat_pay", "unionpay")
_CARRIERS = ("SF", "JD", "ZTO", "YTO")


def _contact(rng: random.Random) -> tuple[str, dict[str, str]]:
    region, city, districts = rng.choice(_PLACES)
    name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2)))
    address = (
        f"{city}{rng.choice(districts)}{rng.choice(_ROADS)}{rng.randint(1, 999)}号"
        f"{rng.randint(1, 30)}栋{rng.randint(101, 2808)}室"
    )
    phone = f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"
    ip = f"{rng.choice((101, 111, 112, 113, 114, 115, 116, 117, 183, 223))}.{rng.randint(0, 255)}"
    ip += f".{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return region, {"recipient_name": name, "phone": phone, "address": address, "ip": ip}


def _order(rng: random.Random, seed: int, n: int, accounts: int) -> list[dict[str, Any]]:
    """The four commands of order ``n``: submit, pay, ship, deliver."""
    order_no, prefix = f"B{seed}-{n:08d}", f"bench-{seed}-{n}"
    region, contact = _contact(rng)
    lines: list[dict[str, Any]] = []
    for sku, price in rng.sample(_SKUS, k=rng.choice((1, 1, 1, 2, 3))):
        quantity = rng.choice((1, 1, 1, 2))
        discount = rng.choice((0, 0, 0, 1000)) * quantity
        lines.append(
            {"sku": sku, "quantity": quantity, "unit_price_fen": price, "discount_fen": discount}
        )
    total = sum(ln["quantity"] * ln["unit_price_fen"] - ln["discount_fen"] for ln in lines)
    base = {"order_no": order_no}
    return [
        {
            **base,
            "type": "submit_order",
            "command_id": f"{prefix}-submit",
            "account_no": f"acct-{rng.randrange(accounts):07d}",
            "lines": lines,
            "seller_id": "mall-self",
            "shipping_region": region,
            "contact": contact,
        },
        {
            **base,
            "type": "receive_payment",
            "command_id": f"{prefix}-pay",
            "payment_id": f"pay-{prefix}",
            "method": rng.choice(_METHODS),
            "payer_account": contact["phone"],
            "amount_fen": total,
        },
        {
            **base,
            "type": "ship_order",
            "command_id": f"{prefix}-ship",
            "carrier": rng.choice(_CARRIERS),
            "tracking_no": f"T{seed}{n:010d}",
        },
        {
            **base,
            "type": "deliver_order",
            "command_id": f"{prefix}-deliver",
            "signer_relation": rng.choice(("self", "self", "family", "agent")),
        },
    ]


def generate_orders(orders: int, seed: int) -> Iterator[tuple[dict[str, Any], datetime]]:
    """Deterministic traffic: ``orders`` orders, each submitted, paid (within the 30-minute
    deadline), shipped (hours to two days later) and delivered (one to four days later),
    interleaved in time order as a mall would see them; about three orders per account.
    Memory: the orders still in flight (a heap), not the whole workload."""
    if not 0 <= orders <= MAX_ORDERS:
        raise ValueError(f"orders must be between 0 and {MAX_ORDERS}")
    rng = random.Random(seed)
    accounts = max(1, orders // 3)
    clock = datetime(2025, 11, 11, 0, 0, tzinfo=CHINA)
    pending: list[tuple[datetime, int, dict[str, Any]]] = []
    sequence = 0
    for n in range(orders):
        clock += timedelta(milliseconds=rng.randint(200, 3000))
        while pending and pending[0][0] <= clock:
            at, _, command = heapq.heappop(pending)
            yield command, at
        submit, pay, ship, deliver = _order(rng, seed, n, accounts)
        yield submit, clock
        paid = clock + timedelta(seconds=rng.randint(10, 20 * 60))
        shipped = paid + timedelta(minutes=rng.randint(4 * 60, 48 * 60))
        delivered = shipped + timedelta(minutes=rng.randint(24 * 60, 96 * 60))
        for at, command in ((paid, pay), (shipped, ship), (delivered, deliver)):
            sequence += 1
            heapq.heappush(pending, (at, sequence, command))
    while pending:
        at, _, command = heapq.heappop(pending)
        yield command, at
