"""Identity as an OAuth 2.0 / OpenID Connect provider: registered clients (``clients``, ``registration``),
the code grant and ID tokens (``provider``), the refresh grant (``refresh``), the token pipeline both share
(``pipeline``, ``claims``), access tokens and their signing keys (``tokens``, ``keys``), revocation, the
endpoints, and back-channel logout from Keycloak (``backchannel``, ``keycloak_portal``)."""
