"""Badge readers: the polling interface and debouncer, the RC522 and a simulated reader."""
