"""How a person logs in to identity: the pages of each method (``methods``, ``email_login``), the
invitation take-up (``invitation``), passwords, the connectors built from settings (``providers``) and
the server-side browser session (``web_session``)."""
