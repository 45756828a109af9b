"""The outbox of messages to send, and their delivery."""
