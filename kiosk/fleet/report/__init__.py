"""`kiosk report`: charts and tables from device or collector databases (k-suppressed summaries only)."""
