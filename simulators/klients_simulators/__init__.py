"""Simulators of the providers Klients cannot reach from a development machine or CI. Never deployed:
production configuration points the connectors at the real services."""
