"""docs/config.md, the config reference, rendered from the schema: every key with its type, default and meaning.

    python -m infscale.config_reference > docs/config.md

A test keeps the file equal to what this prints, so the reference and the schema cannot drift apart."""
from __future__ import annotations

import json
import sys

import yaml

from infscale.core.validation import SCHEMA_PATH

HEADER = """# Config reference

Every key of a study's config (`config.yaml`, `config/*.yaml`), generated from the schema
(`src/infscale/resources/config.schema.yaml`) by `python -m infscale.config_reference > docs/config.md` (a test
checks that this file is current). A wrong key or type stops the run before any job starts and names the key;
defaults are filled in at every depth. `<slug>` stands for a name you choose (letters, digits, `.` and `-`).

| key | type | default | meaning |
|---|---|---|---|
"""


def _resolve(node: dict, schema: dict) -> dict:
    while "$ref" in node:
        ref = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            ref = ref[part]
        node = {**ref, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type(node: dict, schema: dict) -> str:
    node = _resolve(node, schema)
    if "enum" in node:
        return ", ".join(f"`{v if isinstance(v, str) else json.dumps(v)}`" for v in node["enum"])  # true, not True
    if "oneOf" in node:
        return " or ".join(_type(n, schema) for n in node["oneOf"])
    t = node.get("type", "object" if "properties" in node else "")
    if t == "array":
        return f"list of {_type(node.get('items', {}), schema) or 'values'}"
    if t == "integer" and node.get("minimum") == 1:
        return "positive integer"
    return str(t)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def rows(node: dict, schema: dict, path: str = "") -> list[str]:
    node = _resolve(node, schema)
    out = []
    for name, sub in node.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        full = _resolve(sub, schema)
        default = f"`{json.dumps(full['default'])}`" if "default" in full else ""
        meaning = _cell(full.get("description", ""))
        out.append(f"| `{key}` | {_cell(_type(sub, schema))} | {_cell(default)} | {meaning} |")
        out += rows(full, schema, key)
        if isinstance(full.get("additionalProperties"), dict):
            out += rows(full["additionalProperties"], schema, f"{key}.<{'rule' if name == 'resources' else 'slug'}>")
        if full.get("type") == "array" and isinstance(full.get("items"), dict):
            out += rows(full["items"], schema, f"{key}[]")
    return out


def render(schema: dict | None = None) -> str:
    schema = schema or yaml.safe_load(SCHEMA_PATH.read_text())
    return HEADER + "\n".join(rows(schema, schema)) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
