"""What an installation needs besides the package: the broker's files, made from the hub
configuration so that they cannot say something else than it.

- :mod:`.mosquitto`: the Mosquitto settings and ACL as text (pure), the identity checks
  that keep topic wildcards out of them, and writing a site's broker files;
- :mod:`.passwd`: Mosquitto's password-file hash, the password file kept across runs,
  and the clear passwords handed to each node.
"""
