"""Every table of the application, imported in one place so the metadata is complete."""

from marketplace.accounts.models import AccessToken, User
from marketplace.db import Base

__all__ = ["AccessToken", "Base", "User"]
