"""The API's own description: ``/api/v1/openapi.json`` (OpenAPI 3.1, built from the declarations the
gateway validates with) and ``/api/v1/docs``, a readable reference page rendered from it (no scripts, no
third-party assets)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, jsonify, render_template_string
from flask.typing import ResponseReturnValue

from .. import openapi
from ..openapi import operation
from . import api


def description() -> dict[str, Any]:
    """Return the OpenAPI description (built once per process)."""
    if "klients_openapi" not in current_app.extensions:
        current_app.extensions["klients_openapi"] = openapi.build(current_app)
    spec: dict[str, Any] = current_app.extensions["klients_openapi"]
    return spec


@api.get("/openapi.json")
@operation(summary="This API's OpenAPI 3.1 description", tag="reference", public=True)
def openapi_json() -> ResponseReturnValue:
    """The OpenAPI 3.1 description of every endpoint, from the schemas requests are validated with."""
    response = jsonify(description())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ spec.info.title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
code,pre{background:#f4f4f4;border-radius:3px}pre{padding:.6rem;overflow:auto;font-size:.85rem}
h3{margin-top:2rem;border-top:1px solid #ccc;padding-top:1rem}
.m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}table{border-collapse:collapse}
td,th{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #eee}
</style></head><body>
<h1>{{ spec.info.title }}</h1><p>{{ spec.info.description }}</p>
<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI {{ spec.openapi }}).
Authentication: <code>Authorization: Bearer &lt;access token&gt;</code> unless marked public.</p>
<nav><ul>{% for tag, ops in by_tag %}<li><a href="#{{ tag }}">{{ tag }}</a></li>{% endfor %}</ul></nav>
{% for tag, ops in by_tag %}<h2 id="{{ tag }}">{{ tag }}</h2>
{% for path, method, op in ops %}<h3 id="{{ op.operationId }}">
<span class="m">{{ method }}</span><code>{{ path }}</code></h3>
<p><strong>{{ op.summary }}</strong>{% if not op.security %} (public){% endif %}</p>
{% for para in op.description.split("\\n\\n") %}<p>{{ para }}</p>{% endfor %}
{% if op.parameters %}<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td><td>{{ p.in }}</td>
<td>{{ "yes" if p.required else "no" }}</td>
<td><code>{{ p.schema | tojson }}</code></td></tr>{% endfor %}</table>{% endif %}
{% if op.requestBody %}<p>Request body (application/json):</p>
<pre>{{ pretty(op.requestBody.content["application/json"].schema) }}</pre>{% endif %}
<p>Responses: {% for status, r in op.responses.items() %}
<code title="{{ r.description }}">{{ status }}</code> {% endfor %}</p>
{% endfor %}{% endfor %}
<h2>Errors</h2><pre>{{ pretty(spec.components.schemas.Problem) }}</pre>
</body></html>"""


@api.get("/docs")
def reference_page() -> Response:
    """A readable reference of the API, rendered from its OpenAPI description."""
    spec = description()
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((path, method, op))
    html = render_template_string(PAGE, spec=spec, by_tag=list(by_tag.items()),
                                  pretty=lambda schema: json.dumps(schema, indent=2, ensure_ascii=False))
    return Response(html, mimetype="text/html",
                    headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                             "frame-ancestors 'none'"})
