"""The hostile-sources matrix and the SSRF guard, against the loopback newsroom."""
