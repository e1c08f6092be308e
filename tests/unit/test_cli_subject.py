"""Every command line that names a data subject takes an account number as commands do, and
refuses a phone number or an email before opening anything (issue 11, item 7): ``access``
once took one and answered NOT_FOUND while ``hold`` and ``erase`` refused it."""

from __future__ import annotations

import pytest

from cli.app import build_parser

PHONE, EMAIL = "13912345678", "li.lei@example.com"
# Each command naming a subject, with what else it needs to parse.
SUBJECT_COMMANDS = [
    ["access", "{}", "--out", "copy"],
    ["erase", "{}"],
    ["hold", "place", "{}", "--reference", "CASE-1", "--reason", "dispute"],
    ["hold", "release", "{}", "--reference", "CASE-1"],
]


@pytest.mark.parametrize("shape", [PHONE, "+86 139 1234 5678", "008613912345678", EMAIL])
@pytest.mark.parametrize("argv", SUBJECT_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_a_phone_or_email_as_subject_is_refused_naming_the_rule_not_the_value(
    argv: list[str], shape: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([part.format(shape) for part in argv])
    assert exited.value.code == 2
    said = capsys.readouterr().err
    assert "SUBJECT" in said and "account number" in said
    assert shape not in said


@pytest.mark.parametrize("argv", SUBJECT_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_an_account_number_as_subject_is_taken(argv: list[str]) -> None:
    assert build_parser().parse_args([part.format("C0001") for part in argv]).subject == "C0001"
