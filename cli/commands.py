"""``ledger commands [--json-schema]``: every command type with its fields, as an import line
takes them (a command, optionally with ``"at"``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.exits import Exit
from ledger.commands import COMMAND_TYPES, RESULT_FIELDS, Chars
from ledger.importer import IMPORT_TIME, import_line_schema
from ledger.settings import Settings

# Every one-line text field says so in its schema; listed, it would only repeat itself.
ONE_LINE_RULE = Chars().rule()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "commands",
        help="list every command type with its fields",
        description="Every command the ledger takes (ledger import, the API), with its fields: "
        "* marks a required one. A command is one JSON object with these fields; a line of an "
        'import file may also carry "at".',
    )
    parser.add_argument(
        "--json-schema",
        action="store_true",
        help='print the JSON Schema of an import line instead: any command, with "at" '
        "(ledger.importer.import_line_schema)",
    )
    parser.set_defaults(run=run)


def field_line(name: str, spec: dict[str, Any], required: bool) -> str:
    return f"  {'*' if required else ' '} {name}: {describe(spec)}"


def describe(spec: dict[str, Any]) -> str:
    """A field's JSON type in a few words, from its schema."""
    if "const" in spec:
        return json.dumps(spec["const"])
    if "enum" in spec:
        return " | ".join(json.dumps(v) for v in spec["enum"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in spec:
        return " | ".join(describe(part) for part in spec["anyOf"])
    if spec.get("type") == "array":
        return f"list of {describe(spec.get('items', {}))}"
    if spec.get("format") == "date-time":
        return (
            f"RFC 3339 date-time with offset, from {spec['formatMinimum']} to before "
            f"{spec['formatExclusiveMaximum']}"
        )
    kind = str(spec.get("type", "any"))
    if "minimum" in spec or "maximum" in spec:
        kind += f" {spec.get('minimum', '')}..{spec.get('maximum', '')}"
    meaning = spec.get("description")
    if meaning and meaning != ONE_LINE_RULE:  # what a field means or takes (signer_relation)
        kind += f" ({meaning})"
    return kind


def fields(model: dict[str, Any], leave_out: str = "") -> list[str]:
    required = set(model.get("required", ()))
    properties = model["properties"].items()
    return [field_line(f, spec, f in required) for f, spec in properties if f != leave_out]


def render(schema: dict[str, Any]) -> list[str]:
    """The import line's schema as text: each command with its fields (and what its result
    carries), then the parts of commands, then the field an import line adds."""
    defs = schema["$defs"]
    by_type = {
        model["properties"]["type"]["const"]: model
        for model in defs.values()
        if "const" in model.get("properties", {}).get("type", {})
    }
    lines: list[str] = []
    for name in COMMAND_TYPES:
        lines.append(name)
        lines += fields(by_type[name], leave_out="at")
        lines += [f"    result: {result}" for result in RESULT_FIELDS.get(name, ())]
    parts = sorted(set(defs) - {m["title"] for m in by_type.values()} - {IMPORT_TIME})
    for part in parts:
        lines.append(f"{part} (a part of a command)")
        lines += fields(defs[part])
    lines.append("an import line (ledger import): any command above, and optionally")
    lines.append(f"    at: {defs[IMPORT_TIME]['description']}")
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    schema = import_line_schema()
    if args.json_schema:
        sys.stdout.write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n".join(render(schema)) + "\n")
    return Exit.OK
