"""``kiosk run``: the runtime (one config's parts and threads) and the service loop around it
(signals, systemd notifications, config reload)."""
