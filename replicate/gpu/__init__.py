"""The device script: everything one lent GPU measures, in one command (device_run.sh)."""
