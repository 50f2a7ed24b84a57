"""Klients identity: the OpenID Connect provider (Flask + authlib), persons, grants, signing keys.

Laid out by role (docs/identity.md, "Layout"): a small core (``settings``, ``models``, ``db``, ``pages``,
``limits``, ``hardening``, ``nonces``, ``retention``), ``connectors/`` (strong-authentication providers),
``oauth/`` (the provider), ``access/`` (persons and grants), ``login/``, ``operator/``, ``events/`` (the
nameko services), and ``app`` / ``cli`` on top. Each layer imports only those below it."""
