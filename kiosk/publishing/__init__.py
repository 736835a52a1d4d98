"""The device's side of the broker: the link (availability, status, stats, commands), and the
drainer that sends the outbox's summaries and deletes nothing until the broker has acknowledged it."""
