"""The central side: the collector and its database, ``kiosk watch`` and ``kiosk report``. Nothing
here imports OpenCV, the vision stack or a TFLite runtime (tests/test_imports.py checks it); it
shares only the wire formats (kiosk.payloads) and the MQTT client (kiosk.mqtt) with the device."""
