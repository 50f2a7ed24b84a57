"""Identity's customer-service pages: operators sign in through the Keycloak staff realm (``staff``) and
decide paper applications (``applications``); their words are in ``texts``."""
