"""Klients metering service."""
