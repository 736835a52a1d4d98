"""MQTT: the publisher interface around paho, the outbox drainer, and the central collector."""
