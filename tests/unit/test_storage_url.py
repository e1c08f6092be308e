"""The database URL, parsed once (ledger/storage_url.py): what each form means, and every
malformed one refused naming the setting and the rule, its password never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.domain.errors import InvalidCommand
from ledger.settings import load_settings
from ledger.storage_url import DEFAULT_SQLITE_PATH, StorageKind, StorageUrl, redact

SECRET = "s3cret-pw"


def test_an_unset_url_is_the_default_sqlite_file() -> None:
    for unset in (None, ""):
        url = StorageUrl.parse(unset)
        assert url.kind is StorageKind.SQLITE and url.sqlite_path == DEFAULT_SQLITE_PATH
    assert load_settings({}).database_url is None


def test_a_sqlite_url_names_a_relative_or_an_absolute_file() -> None:
    assert StorageUrl.parse("sqlite:///var/x.db").sqlite_path == Path("var/x.db")
    assert StorageUrl.parse("sqlite:////tmp/y.db").sqlite_path == Path("/tmp/y.db")


def test_a_postgres_url_gives_its_connection_parameters_and_hides_its_password() -> None:
    url = StorageUrl.parse(f"postgresql://ann:{SECRET}@db.example:6543/books", environ={})
    assert url.is_postgres and url.pg is not None
    assert url.pg.as_dict() == {
        "dbname": "books",
        "host": "db.example",
        "port": "6543",
        "user": "ann",
        "password": SECRET,
    }
    assert SECRET not in url.redacted and SECRET not in repr(url) and SECRET not in url.where
    assert url.redacted == "postgresql://ann:***@db.example:6543/books"


def test_postgres_defaults_fill_what_the_url_leaves_out() -> None:
    url = StorageUrl.parse("postgres://", environ={})
    assert url.pg is not None
    assert (url.pg.host, url.pg.port, url.pg.user, url.pg.dbname) == (
        "127.0.0.1",
        5432,
        "postgres",
        "postgres",
    )


def test_postgres_and_postgresql_name_the_same_database_and_the_rule_says_so() -> None:
    short = StorageUrl.parse("postgres://ann@db.example:6543/books", environ={})
    long = StorageUrl.parse("postgresql://ann@db.example:6543/books", environ={})
    assert (short.kind, short.pg) == (long.kind, long.pg)
    with pytest.raises(InvalidCommand) as caught:
        StorageUrl.parse("mysql://db", environ={})
    assert "postgres:// is taken as postgresql://" in caught.value.rule


def test_the_pool_size_comes_with_the_url() -> None:
    assert StorageUrl.parse(None, environ={"LEDGER_POOL_SIZE": "7"}).pool_size == 7


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (f"mysql://root:{SECRET}@localhost/x", "must start with postgresql:// or sqlite:///"),
        ("var/ledger.db", "must start with postgresql:// or sqlite:///"),
        ("sqlite:var/ledger.db", "sqlite:///PATH"),
        ("sqlite://", "sqlite:///PATH"),
        ("sqlite:///", "sqlite:///PATH"),
        ("sqlite:///var/", "sqlite:///PATH"),
        (f"postgresql://u:{SECRET}@h:notaport/db", "port must be a number from 1 to 65535"),
        (f"postgresql://u:{SECRET}@h:99999/db", "port must be a number from 1 to 65535"),
        (f"postgresql://u:{SECRET}@h:0/db", "port must be a number from 1 to 65535"),
        (f"postgresql://u:{SECRET}@[::1:5432/db", "host is not a valid name or address"),
        (f"postgresql://u:{SECRET}@h/db?sslmode=require", "takes no ?parameters"),
        (f"postgresql://u:{SECRET}@h/db?connect_timeout=abc", "takes no ?parameters"),
    ],
)
def test_a_malformed_url_is_refused_naming_the_setting_and_the_rule(text: str, rule: str) -> None:
    for setting in ("LEDGER_DATABASE_URL", "--database-url"):
        with pytest.raises(InvalidCommand) as caught:
            StorageUrl.parse(text, setting=setting, environ={})
        assert caught.value.field == setting
        assert rule in caught.value.rule
        assert SECRET not in caught.value.message
    with pytest.raises(InvalidCommand) as from_env:
        load_settings({"LEDGER_DATABASE_URL": text})
    assert from_env.value.field == "LEDGER_DATABASE_URL"


def test_redact_replaces_only_the_password() -> None:
    assert redact(f"postgresql://u:{SECRET}@h/db") == "postgresql://u:***@h/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact(f"postgresql://u:{SECRET}@x/y@h/db") == "postgresql://u:***@h/db"
    assert redact("sqlite:///var/ab.db") == "sqlite:///var/ab.db"
