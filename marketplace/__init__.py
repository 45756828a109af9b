"""Practitioner booking and matching marketplace."""

from marketplace.app import create_app

__all__ = ["create_app"]
