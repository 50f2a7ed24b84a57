"""Identity's customer-service pages: operators sign in through the Keycloak staff realm and decide
paper applications."""
