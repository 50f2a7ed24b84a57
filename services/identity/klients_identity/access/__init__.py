"""Who may do what: persons and their login sessions (``accounts``), grants and invitations (``grants``),
contact details (``contacts``), application attachments, and the client register at billing (``register``)."""
