"""The files of an access copy, and writing them as one directory or not at all (PIPL 45;
ledger/access_copy.py).

- ``subject.json``, ``orders.json``: UTF-8 JSON, indented, Chinese as it is (not escaped).
- One CSV per table (``orders.csv``, ``items.csv``, ``payments.csv``, ``refunds.csv``,
  ``deliveries.csv``, ``returns.csv``, ``personal_data.csv``, ``retention.csv``): UTF-8 with a
  byte-order mark, so Excel opens the Chinese correctly; CRLF line ends; a header of two rows,
  the Chinese labels (订单号, 金额（元）, 收货人 …), then the English field names. A text cell
  starting with ``= + - @`` (or a tab or carriage return) is written with a leading ``'`` so a
  spreadsheet shows it as text instead of running it as a formula (OWASP, CSV injection): a
  person's address or name could start with one.
- ``manifest.json``, last: every other file's name, SHA-256 and size in bytes, the subject,
  when it was made (the ledger's clock, China time), the log position the copy reflects and
  the ledger's version.

Writing (``written_atomically``): into a new directory beside the target (``.DIR.access-…``,
mode 0700, files 0600 made with ``O_EXCL | O_NOFOLLOW``), each file flushed to disk, then one
``rename`` onto the target, which must not exist or be an empty directory. On any failure or
interruption (Ctrl-C included) the temporary directory is removed; a process killed outright
leaves it (hidden, owner-only) and never a partial target, and the next copy into the same
target removes the leftovers of runs no longer alive.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ledger.access_view import china
from ledger.domain import codes
from ledger.domain.errors import LedgerError
from ledger.files import PRIVATE_DIR_MODE, create_new, named_as

FORMAT = "mall-ledger access copy"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CSV_ENCODING = "utf-8-sig"  # with a byte-order mark: Excel reads the file as UTF-8
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Row = dict[str, Any]
Column = tuple[str, str]  # (English field name, Chinese label)


class OutputRefused(LedgerError):
    """The copy's directory cannot be made where asked (``IO_ERROR``): it exists and is not
    empty, is not a directory, is a link, or its parent is missing; nothing was written."""

    catalogued = codes.IO_ERROR


@dataclass(frozen=True)
class FileEntry:
    """One file of a copy: its name, SHA-256 (hex) and size in bytes."""

    name: str
    sha256: str
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "bytes": self.size_bytes}


def file_entries(files: dict[str, bytes]) -> list[FileEntry]:
    """An entry for each of ``files`` (name -> bytes), in their order."""
    return [
        FileEntry(name, hashlib.sha256(data).hexdigest(), len(data)) for name, data in files.items()
    ]


# -- the CSV tables ---------------------------------------------------------------------------
ORDERS: list[Column] = [
    ("order_no", "订单号"),
    ("status", "订单状态"),
    ("submitted_at", "下单时间"),
    ("seller_id", "卖家"),
    ("shipping_region", "收货地区"),
    ("total_due_fen", "应付金额（分）"),
    ("total_due_yuan", "应付金额（元）"),
    ("paid_fen", "已付金额（分）"),
    ("paid_yuan", "已付金额（元）"),
    ("refunded_fen", "已退金额（分）"),
    ("refunded_yuan", "已退金额（元）"),
    ("recipient_name", "收货人"),
    ("phone", "手机号"),
    ("address", "地址"),
    ("ip", "IP地址"),
    ("delivered_at", "签收时间"),
    ("closed_at", "关闭时间"),
    ("completed_at", "交易完成时间"),
    ("retain_until", "保存期限"),
]
ITEMS: list[Column] = [
    ("order_no", "订单号"),
    ("sku", "商品编号"),
    ("quantity", "数量"),
    ("unit_price_fen", "单价（分）"),
    ("unit_price_yuan", "单价（元）"),
    ("discount_fen", "优惠（分）"),
    ("discount_yuan", "优惠（元）"),
    ("amount_fen", "金额（分）"),
    ("amount_yuan", "金额（元）"),
]
PAYMENTS: list[Column] = [
    ("order_no", "订单号"),
    ("payment_id", "支付流水号"),
    ("method", "支付方式"),
    ("payer_account", "付款账户"),
    ("amount_fen", "金额（分）"),
    ("amount_yuan", "金额（元）"),
    ("at", "支付时间"),
]
REFUNDS: list[Column] = [
    ("order_no", "订单号"),
    ("refund_id", "退款编号"),
    ("method", "支付方式"),
    ("amount_fen", "金额（分）"),
    ("amount_yuan", "金额（元）"),
    ("purpose", "退款原因"),
    ("destination", "退款去向"),
    ("destination_account", "退款账户"),
    ("status", "退款状态"),
    ("initiated_at", "发起时间"),
    ("completed_at", "完成时间"),
]
STEPS: list[Column] = [
    ("order_no", "订单号"),
    ("step", "环节"),
    ("at", "时间"),
    ("detail", "详情"),
]
PERSONAL_DATA: list[Column] = [
    ("field", "类别"),
    ("label", "类别名称"),
    ("value", "内容"),
    ("orders", "所在订单"),
]
RETENTION: list[Column] = [
    ("order_no", "订单号"),
    ("completed_at", "交易完成时间"),
    ("retain_until", "保存期限"),
    ("law", "法律依据"),
]
FIELD_LABELS = {
    "recipient_name": "收货人",
    "phone": "手机号",
    "address": "地址",
    "ip": "IP地址",
    "payer_account": "付款账户",
    "refund_destination": "退款账户",
}


def _steps(orders: list[Row], key: str) -> list[Row]:
    """Delivery or return steps, one row each; their other facts as JSON in ``detail``."""
    rows = []
    for order in orders:
        for step in order[key]:
            rest = {k: v for k, v in step.items() if k not in ("step", "at")}
            rows.append(
                {
                    "order_no": order["order_no"],
                    "step": step["step"],
                    "at": step["at"],
                    "detail": orjson.dumps(rest).decode(),
                }
            )
    return rows


def tables(subject: Row, orders: list[Row]) -> dict[str, tuple[list[Column], list[Row]]]:
    """Each CSV file's name, columns and rows."""

    def each(key: str) -> list[Row]:
        return [{"order_no": o["order_no"], **row} for o in orders for row in o[key]]

    personal = [
        {
            "field": name,
            "label": FIELD_LABELS.get(name, name),
            "value": found["value"],
            "orders": " ".join(found["orders"]),
        }
        for name, values in subject["personal_data"].items()
        for found in values
    ]
    return {
        "orders.csv": (ORDERS, [{**o, **o["contact"]} for o in orders]),
        "items.csv": (ITEMS, each("items")),
        "payments.csv": (PAYMENTS, each("payments")),
        "refunds.csv": (REFUNDS, each("refunds")),
        "deliveries.csv": (STEPS, _steps(orders, "deliveries")),
        "returns.csv": (STEPS, _steps(orders, "returns")),
        "personal_data.csv": (PERSONAL_DATA, personal),
        "retention.csv": (RETENTION, subject["retention"]),
    }


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(columns: list[Column], rows: Iterable[Row]) -> bytes:
    """A CSV file: BOM, the Chinese header row, the English one, then ``rows``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([label for _, label in columns])
    writer.writerow([name for name, _ in columns])
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name, _ in columns])
    return out.getvalue().encode(CSV_ENCODING)


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


def render_files(
    subject: Row,
    orders: list[Row],
    *,
    subject_id: str,
    position: int,
    made_at: datetime,
    version: str,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file of the copy (name -> bytes, ``manifest.json`` last) and the manifest."""
    files = {"subject.json": json_bytes(subject), "orders.json": json_bytes({"orders": orders})}
    counted = tables(subject, orders)
    for name, (columns, rows) in counted.items():
        files[name] = csv_bytes(columns, rows)
    counts = {name.removesuffix(".csv"): len(rows) for name, (_, rows) in counted.items()}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "law": "PIPL 45",
        "subject_id": subject_id,
        "made_at": china(made_at),
        "position": position,
        "ledger_version": version,
        "counts": counts,
        "csv": "UTF-8 with BOM; header rows: Chinese labels, then English field names",
        "files": [entry.as_dict() for entry in file_entries(files)],
    }
    files[MANIFEST] = json_bytes(manifest)
    return files, manifest


# -- writing ----------------------------------------------------------------------------------
def check_output_dir(target: Path) -> None:
    """``OutputRefused`` unless ``target`` may become the copy: absent or an empty directory
    (not a link), in an existing directory."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        if not target.parent.is_dir():
            raise OutputRefused(f"{target}: its directory does not exist") from None
        return
    except NotADirectoryError:
        raise OutputRefused(f"{target}: its directory is not a directory") from None
    except OSError as exc:
        raise OutputRefused(f"{target}: {exc.strerror or type(exc).__name__}") from None
    if stat.S_ISLNK(info.st_mode):
        raise OutputRefused(f"{target}: is a symbolic link; nothing was written")
    if not stat.S_ISDIR(info.st_mode):
        raise OutputRefused(f"{target}: exists and is not a directory; nothing was written")
    try:
        taken = any(target.iterdir())
    except OSError as exc:
        raise OutputRefused(f"{target}: {exc.strerror or type(exc).__name__}") from None
    if taken:
        raise OutputRefused(f"{target}: exists and is not empty; nothing was written")


def written_atomically(
    target: Path, files: dict[str, bytes], *, before_rename: Callable[[], None]
) -> None:
    """Write ``files`` into a new directory and rename it to ``target`` (see the module);
    ``before_rename`` runs once every file is on disk (the copy's record). Raises
    ``OutputRefused`` (target taken meanwhile), OSError; nothing is left at ``target``."""
    check_output_dir(target)
    parent = target.parent
    _remove_leftovers(parent, target.name)
    with named_as(target):
        prefix = _staging_prefix(target.name, os.getpid())
        staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        os.chmod(staging, PRIVATE_DIR_MODE)
        for name, data in files.items():
            with create_new(staging / name) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        _fsync_dir(staging)
        check_output_dir(target)
        before_rename()
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise OutputRefused(f"{target}: was taken while the copy was made") from None
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(parent)


def _staging_prefix(name: str, pid: int) -> str:
    return f".{name}.access-{pid}-"


def _remove_leftovers(parent: Path, name: str) -> None:
    """Staging directories of earlier copies into ``name`` whose process is gone (killed)."""
    prefix = f".{name}.access-"
    for leftover in parent.iterdir():
        if not leftover.name.startswith(prefix):
            continue
        pid_text = leftover.name.removeprefix(prefix).split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)) and leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries durable (a rename or new files in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
