"""The publisher interface around paho (MQTT 5, callback API v2), used by the device's link and by the
central collector alike; no paho object leaves this package."""
