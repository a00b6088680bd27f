"""The JSON Schema of site.yaml, published for editors (schema/site.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from provisioner.inventory.models import Site
from provisioner.inventory.rolesettings import SETTINGS_MODELS

REF = "#/$defs/{model}"


def site_schema() -> dict[str, Any]:
    schema = Site.model_json_schema(ref_template=REF)
    _typed_role_settings(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "provisioner site inventory (site.yaml)"
    return schema


def site_schema_text() -> str:
    return json.dumps(site_schema(), indent=2, sort_keys=True) + "\n"


def _typed_role_settings(schema: dict[str, Any]) -> None:
    """``roles.<role>.settings`` as one of the role kinds' settings models, so an editor
    offers their fields (validate still picks the one model of the role's kind)."""
    defs = schema.setdefault("$defs", {})
    refs = []
    for model in SETTINGS_MODELS.values():
        sub = model.model_json_schema(ref_template=REF)
        defs.update(sub.pop("$defs", {}))
        defs[model.__name__] = sub
        refs.append({"$ref": REF.format(model=model.__name__)})
    settings = defs["Role"]["properties"]["settings"]
    settings.pop("additionalProperties", None)
    settings.pop("type", None)
    settings["anyOf"] = refs
