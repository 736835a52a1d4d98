"""Following faces over frames as short-lived, in-memory tracks."""
