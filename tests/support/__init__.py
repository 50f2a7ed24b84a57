"""What the tests share: the running system (``stack``), HTTP and mail helpers, logins at identity, the portal
and Keycloak, a real browser and the pytest plugins that provide their fixtures. Test modules import from
here, never from one another."""
