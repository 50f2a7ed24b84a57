"""The API's description is its enforcement: each view declares its operation (summary, right, request
schemas, response) with ``@operation``. The declaration checks the caller before the view runs (a verified
token unless ``public``, the ``right`` on the contract in the path, a strong login for ``step_up``: see
``auth.enforce``), requests are validated against its schemas (``validated_body``, ``validated_query``),
and ``/api/v1/openapi.json`` is built from the same declarations and Flask's URL map. Nothing is kept by
hand beside the code, so nothing can drift."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import jsonschema
from flask import Flask, request

from klients_common.errors import ValidationFailed
from klients_common.grants import Right

from . import schemas
from .auth import enforce

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


@dataclass(frozen=True)
class Operation:
    """What one endpoint does, needs and answers."""

    summary: str
    tag: str
    right: str | None = None  # the right needed on the path's contract; None: any valid token
    public: bool = False  # no token (signed links, the provider's callback, the description itself)
    step_up: bool = False  # changes need acr >= substantial
    body: schemas.Schema | None = None
    body_optional: bool = False
    query: dict[str, tuple[schemas.Schema, bool]] = field(default_factory=dict)
    headers: dict[str, tuple[schemas.Schema, bool, str]] = field(default_factory=dict)
    response: schemas.Schema | None = None
    status: int = 200
    media: str = "application/json"
    errors: tuple[int, ...] = ()


OPERATIONS: dict[str, Operation] = {}


def operation(**spec: Any) -> Callable[[F], F]:
    """Declare the operation of an ``api`` view (register it under ``api.<function name>``) and enforce it:
    unless ``public``, the view runs only for a caller the declaration admits (``auth.enforce``). Put it
    under the route decorator, so the route serves the enforcing view. A declaration that could not be
    enforced is refused at import: a right on a view without a ``contract`` in its path, a view with a
    ``contract`` but no right to check on it, or a right or step-up on a public view."""

    def register(view: F) -> F:
        declared = Operation(**spec)
        right = Right(declared.right) if declared.right else None  # ValueError for a right that does not exist
        on_contract = "contract" in inspect.signature(view).parameters
        if declared.public and (right or declared.step_up):
            raise TypeError(f"{view.__name__}: a public operation checks no right and no login")
        if not declared.public and on_contract != (right is not None):
            raise TypeError(f"{view.__name__}: declare the right needed on the contract in the path" if on_contract
                            else f"{view.__name__}: a right is checked on a contract: the path needs <contract>")
        OPERATIONS[f"api.{view.__name__}"] = declared
        return view if declared.public else enforce(view, right, declared.step_up)

    return register


def _field_errors(schema: schemas.Schema, instance: Any) -> list[dict[str, str]]:
    """Return every violation as ``{field, code, message}`` in the API's own words (``ERROR_CODES``): unknown
    and missing fields by name, one error per field."""
    found: list[dict[str, str]] = []
    validator = jsonschema.Draft202012Validator(schema, format_checker=FORMATS)
    for error in sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)),
                                                                       e.validator != "type")):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(error.schema.get("properties", {}))
            found += [{"field": ".".join(filter(None, (path, k))), "code": "unknown_field",
                       "message": f"{k} is not accepted here"} for k in sorted(set(error.instance) - known)]
        elif error.validator == "required" and isinstance(error.instance, dict):
            found += [{"field": ".".join(filter(None, (path, k))), "code": "required", "message": f"{k} is required"}
                      for k in error.schema.get("required", []) if k not in error.instance]
        else:
            code = _code(error)
            found.append({"field": path or "(body)", "code": code, "message": MESSAGES.get(code, "is not valid")})
    seen: set[str] = set()
    return [e for e in found if not (e["field"] in seen or seen.add(e["field"]))]  # type: ignore[func-returns-value]


def _whole_number_code(value: Any, schema: schemas.Schema) -> str:
    """Say what is wrong with ``value`` where a whole number is expected."""
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        if re.fullmatch(r"-\d+(\.\d+)?", text):
            return "negative"
        if re.fullmatch(r"\d+\.\d+", text):
            return "not_whole"
        return "not_a_number"
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return "not_a_number"
    if value != value:  # NaN
        return "not_a_number"
    if value < schema.get("minimum", value):
        return "negative" if schema.get("minimum") == 0 else "too_small"
    if value in (float("inf"), float("-inf")) or value > schema.get("maximum", value):
        return str(schema.get("x-error-codes", {}).get("maximum", "too_large"))
    return "not_whole"


TYPE_CODES = {"boolean": "not_boolean", "string": "not_a_string", "object": "not_an_object", "array": "not_a_list",
              "null": "not_null"}
KEYWORD_CODES = {"maxLength": "too_long", "minLength": "too_short", "pattern": "bad_format", "format": "bad_format",
                 "enum": "not_allowed", "const": "not_allowed", "minProperties": "empty", "maxItems": "too_many",
                 "minItems": "too_few", "maximum": "too_large", "exclusiveMaximum": "too_large",
                 "minimum": "too_small", "exclusiveMinimum": "too_small"}
MESSAGES = {
    "not_a_number": "must be a whole number (digits only)", "not_whole": "must be a whole number, no decimals",
    "negative": "must not be negative", "too_many_digits": "has too many digits", "too_small": "is too small",
    "too_large": "is too large", "not_boolean": "must be true or false", "not_a_string": "must be text",
    "not_an_object": "must be an object", "not_a_list": "must be a list", "not_null": "must be null",
    "too_long": "is too long", "too_short": "is too short", "bad_format": "is not in the expected format",
    "not_allowed": "is not one of the allowed values", "empty": "give at least one field",
    "too_many": "has too many items", "too_few": "has too few items",
}


def _code(error: jsonschema.ValidationError) -> str:
    """Return the API's code for one violation: the schema's own (``x-error-codes``), else by what was
    expected and what came (``not_a_number``, ``not_whole``, ``negative``, ``not_boolean``...)."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    overrides = schema.get("x-error-codes", {})
    if error.validator in overrides:
        return str(overrides[error.validator])
    expected = schema.get("type", [])
    expected = {expected} if isinstance(expected, str) else set(expected)
    if expected & {"integer", "number"} and error.validator in ("type", "pattern", "minimum", "maximum"):
        return _whole_number_code(error.instance, schema) if "integer" in expected else (
            "negative" if error.validator == "minimum" and schema.get("minimum") == 0 else "not_a_number")
    if error.validator == "type":
        return next((TYPE_CODES[t] for t in ("boolean", "string", "object", "array", "null") if t in expected),
                    "bad_type")
    if error.validator == "minimum" and schema.get("minimum") == 0:
        return "negative"
    return KEYWORD_CODES.get(str(error.validator), str(error.validator))


def _coerce_digit_strings(schema: schemas.Schema, body: dict[str, Any]) -> dict[str, Any]:
    """Return ``body`` with a string of digits turned into its number where a field takes a whole number
    given either way (``"type": ["integer", "string"]``), so the number's limits apply to it too."""
    out = dict(body)
    for name, spec in schema.get("properties", {}).items():
        types = spec.get("type")
        value = out.get(name)
        if isinstance(types, list) and {"integer", "string"} <= set(types) and isinstance(value, str) \
                and re.fullmatch(r"\s*\d+\s*", value):
            digits = value.strip()
            out[name] = int(digits) if len(digits) <= 40 else 10 ** 40  # int() of thousands of digits is slow
    return out


def validated_body() -> dict[str, Any]:
    """Return the request's JSON body once it satisfies the operation's schema; else ValidationFailed
    listing each bad field."""
    spec = OPERATIONS[str(request.endpoint)]
    assert spec.body is not None, "the operation declares no body"
    errors = _header_errors(spec)
    body: Any = {}
    if not (spec.body_optional and not request.get_data(cache=True)):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            errors.append({"field": "(body)", "code": "type", "message": "send a JSON object "
                                                                        "(Content-Type: application/json)"})
        else:
            body = _coerce_digit_strings(spec.body, body)
            errors += _field_errors(spec.body, body)
    if errors:
        raise ValidationFailed("The request has errors.", {"errors": errors})
    return dict(body)


def _header_errors(spec: Operation) -> list[dict[str, str]]:
    errors = []
    for name, (schema, required, _text) in spec.headers.items():
        value = request.headers.get(name)
        if value is None:
            if required:
                errors.append({"field": name, "code": "required", "message": f"the {name} header is required"})
        else:
            errors += [{**p, "field": name} for p in _field_errors(schema, value)]
    return errors


def validated_query() -> dict[str, str]:
    """Return the query parameters the operation declares (defaults filled in), checked against their schemas."""
    spec = OPERATIONS[str(request.endpoint)]
    values: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for name, (schema, required) in spec.query.items():
        value = request.args.get(name)
        if value is None:
            if required:
                errors.append({"field": name, "code": "required", "message": f"{name} is required"})
            elif "default" in schema:
                values[name] = schema["default"]
            continue
        problems = _field_errors(schema, value)
        errors += [{**p, "field": name} for p in problems]
        values[name] = value
    if errors:
        raise ValidationFailed("The query has errors.", {"errors": errors})
    return values


# --- the OpenAPI description ------------------------------------------------------------------------------

ERROR_TEXT = {
    400: "Bad request", 401: "No valid access token (see WWW-Authenticate)",
    403: "The grant lacks the right (`missing_right`), or a stronger login is needed (`acr_values`, RFC 9470)",
    404: "No such object, or no grant on the contract (never told apart)", 409: "Conflicts with the current state",
    413: "Too large", 415: "Unsupported media type", 422: "Validation failed: `errors` lists each bad field",
    429: "Too many requests (see Retry-After)", 503: "A service is not answering (see Retry-After)",
}


def _path(rule: str) -> tuple[str, list[str]]:
    names = re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule)
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule), names


def _operation_object(endpoint: str, method: str, spec: Operation, path_params: list[str],
                      doc: str) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    statuses = set(spec.errors) | {429}
    if not spec.public:
        statuses |= {401, 503}
        if "contract" in path_params:
            statuses |= {403, 404}
    if spec.body is not None or spec.query:
        statuses.add(422)
    if spec.body is not None:
        statuses.add(413)  # the body is over the limit (klients_common.web), refused before it is read
    if spec.step_up:
        statuses.add(403)
    description = doc
    if spec.right:
        description += f"\n\nNeeds `{spec.right}` on the contract" + (
            " and a login of `acr` ≥ substantial (else 403 with a step-up challenge)." if spec.step_up else ".")
    result: dict[str, Any] = {
        "operationId": endpoint.removeprefix("api."), "summary": spec.summary, "tags": [spec.tag],
        "description": description.strip(),
        "parameters": [{"name": p, "in": "path", "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64}} for p in path_params]
        + [{"name": n, "in": "query", "required": req, "schema": s} for n, (s, req) in spec.query.items()]
        + [{"name": n, "in": "header", "required": req, "schema": s, "description": text}
           for n, (s, req, text) in spec.headers.items()],
        "responses": {str(spec.status): {"description": "OK", "content": {
            spec.media: {"schema": spec.response or {}}} if spec.media == "application/json"
            else {spec.media: {"schema": {"type": "string", "format": "binary"}}}},
            **{str(s): {"description": ERROR_TEXT[s], "content": problem} for s in sorted(statuses)}},
    }
    if spec.body is not None:
        result["requestBody"] = {"required": not spec.body_optional,
                                 "content": {"application/json": {"schema": spec.body}}}
    result["security"] = [] if spec.public else [{"bearer": []}]
    return result


def build(app: Flask) -> dict[str, Any]:
    """Return the OpenAPI 3.1 description of every declared ``/api/v1`` operation."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        spec = OPERATIONS.get(rule.endpoint)
        if spec is None:
            continue
        path, params = _path(rule.rule)
        doc = (app.view_functions[rule.endpoint].__doc__ or "").strip()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation_object(rule.endpoint, method, spec, params, doc)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "Klients public API", "version": "1.0.0",
                 "description": "The client portal's API: bills and payments, meters and readings, consumption, "
                                "contact details, and the users of a contract. JSON in and out; errors are RFC 9457 "
                                "problem details. A contract the caller has no grant on answers 404."},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": "An RFC 9068 access token from identity (or the "
                                                          "configured Keycloak realm); see docs/tokens.md"}},
            "schemas": {"Problem": schemas.PROBLEM},
        },
    }
