"""Klients notifications service."""
