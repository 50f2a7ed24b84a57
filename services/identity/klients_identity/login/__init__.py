"""How a person logs in to identity: the method choice and each method's pages (``methods``, ``smartid``,
``eparaksts``, ``bank``, ``email_login``), strong-login completion (``strong``) and the end of every login
(``signin``), the invitation take-up (``invitation``), passwords, the connectors built from settings
(``providers``) and the server-side browser session (``web_session``)."""
