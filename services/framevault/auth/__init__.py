"""Authentication and authorization of both services (docs/SECURITY.md).

- ``credentials``: API keys (slow hash with a pepper), external JWTs, the
  service tokens the two services give each other.
- ``principals``: the authenticated caller.
- ``permissions``: the one table of what every RPC of both services needs.
- ``interceptor``: the server interceptor that authenticates, authorizes and
  audits every call (health and reflection stay open).
- ``store`` / ``mongo_store``: API keys and role bindings (metadata service).
- ``access_control``: the metadata service's authenticator and authorizer.
- ``servicer``: the AccessService RPCs.
- ``startup``: the security mode, required secrets, the bootstrap admin key.

Only ``mongo_store``, ``access_control`` and ``servicer`` need MongoDB; the
blob service uses the rest.
"""
