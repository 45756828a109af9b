"""Practitioner profiles, credentials and their verification, availability."""
