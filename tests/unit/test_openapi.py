"""The committed OpenAPI spec is the one the code generates."""

from __future__ import annotations

import json
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_spec_is_up_to_date(flask_app):
    generated = flask_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    committed = json.loads(SPEC.read_text())
    assert committed == json.loads(json.dumps(generated)), (
        "openapi/openapi.json is stale: run `comms openapi write openapi/openapi.json`"
    )


def test_spec_documents_the_contract_paths(flask_app):
    paths = json.loads(SPEC.read_text())["paths"]
    for path in (
        "/v1/messages",
        "/v1/messages/batch",
        "/v1/messages/{message_id}",
        "/v1/templates",
        "/v1/templates/{template_id}/approve",
        "/v1/app",
        "/v1/app/webhook-secret",
        "/v1/sandbox/outbox",
    ):
        assert path in paths


def test_docs_are_served(client):
    assert client.get("/openapi.json").json["info"]["title"] == "comms"
    assert b"swagger-ui" in client.get("/docs").data
