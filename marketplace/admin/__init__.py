"""The admin back office: verification queue, suspensions, the audit log."""
