"""The central side: the collector and its database, ``kiosk watch`` and ``kiosk report``. Nothing
here imports OpenCV, the vision stack or a TFLite runtime (tests/test_imports.py checks it); it
shares with the device the wire formats (kiosk.payloads), the MQTT client (kiosk.mqtt) and, for a
report on a device's own database, the store's readers (kiosk.store, kiosk.summary)."""
