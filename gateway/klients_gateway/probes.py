"""Health probes: ``/healthz`` (the process) and ``/readyz`` (RabbitMQ and every service answering)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from . import rpc

probes = Blueprint("probes", __name__)


@probes.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Say the process is up."""
    return jsonify({"status": "ok"})


@probes.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Say whether RabbitMQ and every service answer; 503 naming those that do not."""
    settings = current_app.config["SETTINGS"]
    services = {name: rpc.ping(name, timeout=min(2.0, settings.rpc_timeout)) for name in settings.ready_services}
    ready = all(services.values())
    return jsonify({"status": "ready" if ready else "not ready", "services": services}), 200 if ready else 503
