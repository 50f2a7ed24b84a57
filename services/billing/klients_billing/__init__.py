"""Klients billing service."""
