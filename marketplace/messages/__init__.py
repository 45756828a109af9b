"""Messages written from the outbox's rows and sent through its channels."""
