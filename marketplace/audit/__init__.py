"""The audit log: who decided or read what, append-only."""
