"""Wire formats a device publishes, as pydantic models; ``docs/schema/*.json`` is generated from them
(``python -m kiosk.payloads``) and a test fails when the committed files are out of date."""
