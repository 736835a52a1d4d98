"""``kiosk setup``: the installer's local web page (live view with every face blurred, zones drawn
and edited, placement advice). Nothing in it records a frame; it is never imported by the daemon."""
