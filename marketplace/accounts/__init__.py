"""Users, passwords, login sessions and API tokens."""
