"""Identity as an OAuth 2.0 / OpenID Connect provider: clients and the code grant (``provider``), the
refresh grant (``refresh``), access tokens (``tokens``) and their signing keys (``keys``), revocation
(``revocation``), the endpoints (``endpoints``), back-channel logout from Keycloak (``backchannel``)."""
