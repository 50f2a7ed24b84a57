"""Connectors to the strong-authentication providers (Smart-ID, eParaksts, internet banks).

Each connector is production code: pointed at the real service by configuration, or at its simulator
(``klients_simulators``) in development and tests. Every connector ends a successful login with a
``VerifiedIdentity`` and every failure with ``LoginFailed`` carrying a code and a message a person can act on.
"""
