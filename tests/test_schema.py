"""The OpenAPI schema is valid, warning-free and describes every command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from commands_app.registry import COMMANDS

pytestmark = [pytest.mark.unit]


def test_the_openapi_schema_is_valid_and_describes_every_command(tmp_path: Path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(target))
    schema = yaml.safe_load(target.read_text())
    for name, spec in COMMANDS.items():
        operation = schema["paths"][f"/api/commands/{name}/"]["post"]
        assert "202" in operation["responses"]
        for code in spec.refusals:
            assert code in operation["description"]
    assert "/api/commands/{command_id}/" in schema["paths"]


def test_every_command_body_refuses_unknown_fields_and_every_refusal_is_documented(
    tmp_path: Path,
):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", file=str(target))
    schema = yaml.safe_load(target.read_text())
    components = schema["components"]["schemas"]
    strict = [
        name
        for name, component in components.items()
        if name.endswith("InputRequest") and name != "TokenInputRequest"
    ]
    assert len(strict) >= 9
    for name in strict:
        assert components[name]["additionalProperties"] is False, name
    for name in COMMANDS:
        responses = schema["paths"][f"/api/commands/{name}/"]["post"]["responses"]
        for status in ("400", "401", "403", "404", "413", "415", "422", "429", "503"):
            assert status in responses, (name, status)
            body = responses[status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorOutput"}
    status = schema["paths"]["/api/commands/{command_id}/"]["get"]["responses"]
    assert {"200", "401", "404", "503"} <= set(status)
