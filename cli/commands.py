"""``ledger commands [--json-schema]``: every command type with its fields."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.exits import Exit
from ledger.commands import COMMAND_TYPES, RESULT_FIELDS, command_schema
from ledger.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "commands",
        help="list every command type with its fields",
        description="Every command the ledger takes (ledger import, the API), with its fields: "
        "* marks a required one. A command is one JSON object with these fields.",
    )
    parser.add_argument(
        "--json-schema",
        action="store_true",
        help="print the JSON Schema of every command instead (the one the import and API use)",
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
    kind = str(spec.get("type", "any"))
    if "minimum" in spec or "maximum" in spec:
        kind += f" {spec.get('minimum', '')}..{spec.get('maximum', '')}"
    return kind


def render(schema: dict[str, Any]) -> list[str]:
    defs = schema["$defs"]
    by_type = {
        model["properties"]["type"]["const"]: model
        for model in defs.values()
        if "const" in model.get("properties", {}).get("type", {})
    }
    lines: list[str] = []
    for name in COMMAND_TYPES:
        model = by_type[name]
        required = set(model.get("required", ()))
        lines.append(name)
        lines += [field_line(f, spec, f in required) for f, spec in model["properties"].items()]
        for result in RESULT_FIELDS.get(name, ()):
            lines.append(f"    result: {result}")
    parts = sorted(set(defs) - {m["title"] for m in by_type.values()})
    for part in parts:
        model = defs[part]
        required = set(model.get("required", ()))
        lines.append(f"{part} (a part of a command)")
        lines += [field_line(f, spec, f in required) for f, spec in model["properties"].items()]
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    schema = command_schema()
    if args.json_schema:
        sys.stdout.write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n".join(render(schema)) + "\n")
    return Exit.OK
