"""Write the JSON Schema of every event envelope to ``contracts/schemas/`` (``make schemas``).

The committed files are the contract's review surface: a diff there is a
contract change, and a test fails when the code and the files disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from afflux_contracts.envelope import Envelope
from afflux_contracts.event import EVENT_TYPES

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def schema_of(event_type: str) -> dict[str, Any]:
    event_class = EVENT_TYPES[event_type]
    schema = Envelope[event_class].model_json_schema(mode="serialization")  # type: ignore[valid-type]
    schema["title"] = f"{event_type} envelope"
    schema["$id"] = f"https://afflux.dev/schemas/{event_class.topic.name}/{event_type}.json"
    schema["x-topic"] = event_class.topic.name
    schema["x-schema-version"] = event_class.schema_version
    return schema


def rendered_schemas() -> dict[str, str]:
    """File name -> file text for every event, exactly as ``make schemas`` writes it."""
    return {
        f"{name}.json": json.dumps(schema_of(name), indent=2, sort_keys=True) + "\n"
        for name in sorted(EVENT_TYPES)
    }


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for stale in SCHEMA_DIR.glob("*.json"):
        stale.unlink()
    for file_name, text in rendered_schemas().items():
        (SCHEMA_DIR / file_name).write_text(text)
    print(f"wrote {len(EVENT_TYPES)} schemas to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
