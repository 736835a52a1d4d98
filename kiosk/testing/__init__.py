"""Test and demo helpers (the scenario generator). Not used by the daemon itself."""
