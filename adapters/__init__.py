"""Ways into and out of Gridwhistle: the CLI and data replays (HTTP and Open311 come next)."""
