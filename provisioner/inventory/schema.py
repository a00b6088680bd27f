"""The JSON Schema of site.yaml, published for editors (schema/site.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from provisioner.inventory.models import Site


def site_schema() -> dict[str, Any]:
    schema = Site.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "provisioner site inventory (site.yaml)"
    return schema


def site_schema_text() -> str:
    return json.dumps(site_schema(), indent=2, sort_keys=True) + "\n"
