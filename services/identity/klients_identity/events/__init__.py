"""Identity on the bus: its nameko services (``service``: RPC, events, timers; ``keycloak_sync``: the
portal realm's ``grants`` attributes in Keycloak-fronted mode)."""
