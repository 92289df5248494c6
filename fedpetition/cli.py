"""The ``fedpetition`` command.

Every failure ends in a non-zero exit and one line on stderr naming what failed;
no traceback reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys

# numpy (the verifier's columns) loads OpenBLAS, which starts a thread per core
# at import and is never used here: one thread, before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from collections.abc import Coroutine, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from fedpetition import __version__
from fedpetition.core.bundle import FileSource
from fedpetition.core.errors import FedPetitionError, VerificationError
from fedpetition.core.notes import VerifierKey
from fedpetition.core.receipts import RECEIPT_STEPS, Receipt, check_consistency, verify_receipt
from fedpetition.core.verification import Verification, unreadable_report
from fedpetition.verify.archive import ZipBundleWriter, ZipSource
from fedpetition.verify.parallel import default_workers, zip_runner
from fedpetition.verify.render import ProgressBar, flag_line, one_line, print_json, print_text

T = TypeVar("T")
EXIT_OK, EXIT_FAILED = 0, 1
EXIT_FLAGGED = 3  # verified, but the report raises a flag (spec §11.7, §11.9)
STEP_ONLINE = "receipt-consistency"  # argparse exits 2 on a usage error


class CommandError(Exception):
    """A one-line reason to stop with a non-zero exit."""


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a node command's coroutine (asyncio is imported only by the commands that use it)."""
    import asyncio

    return asyncio.run(coroutine)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from fedpetition.simulate import SimulationSpec, simulate

    spec = SimulationSpec(args.nodes, args.signatures, args.duplicates, args.withdrawals,
                          args.seed)
    try:
        spec.check()
    except FedPetitionError as e:
        raise CommandError(str(e)) from e
    bar = ProgressBar("simulate")
    try:
        with ZipBundleWriter(args.out) as writer:
            result = simulate(spec, writer.add, progress=bar)
    except OSError as e:
        raise CommandError(f"cannot write {args.out}: {e.strerror or e}") from e
    finally:
        bar.close()
    if args.receipt and result.receipt is not None:
        try:
            with open(args.receipt, "wb") as f:
                f.write(result.receipt)
        except OSError as e:
            raise CommandError(f"cannot write {args.receipt}: {e.strerror or e}") from e
    print(f"wrote {args.out}: petition {result.petition}, {spec.nodes} node(s), "
          f"{spec.signatures:,} sign entries ({spec.duplicates:,} on a second node, "
          f"{spec.withdrawals:,} withdrawn), {result.members:,} files")
    print(f"expected federated total: {result.expected_total:,}")
    print(f"origin key: {result.origin_key}")
    if args.receipt and result.receipt is not None:
        print(f"wrote a signer's receipt to {args.receipt}")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    origin_key = None
    if args.origin_key:
        try:
            origin_key = VerifierKey.parse(args.origin_key)
        except FedPetitionError as e:
            raise CommandError(f"--origin-key: {e}") from e
    bar = ProgressBar("verify")
    workers = args.workers if args.workers is not None else default_workers()
    source_arg: str = args.source
    try:
        with ExitStack() as stack:
            source: FileSource
            path = source_arg
            if source_arg.startswith(("http://", "https://")):
                from fedpetition.verify.http import HttpSource, download

                if source_arg.split("?", 1)[0].endswith(".zip"):
                    spool = stack.enter_context(download(source_arg))
                    path = spool.name
                else:
                    source = stack.enter_context(HttpSource(source_arg))
                    workers = 1  # a live source is read through one connection at a time
                    path = ""
            runner = None
            if path:
                archive = stack.enter_context(ZipSource(path))
                source = archive
                if workers > 1:
                    runner = stack.enter_context(zip_runner(archive, workers))
            report = Verification(source, origin_key=origin_key, exclude=args.exclude or (),
                                  progress=bar, runner=runner).run()
    except FedPetitionError as e:
        # The source itself is unreadable: still a report, with its first step failed.
        report = unreadable_report(str(e))
    except BrokenProcessPool as e:
        raise CommandError(f"a worker process stopped during the verification ({e}); "
                           "--workers 1 verifies in this process alone") from None
    finally:
        bar.close()
    if args.json:
        print_json(report, sys.stdout)
    else:
        print_text(report, sys.stdout)
    if not report.ok:
        failed = report.failures
        if failed:
            print(f"verify: FAIL {one_line(failed[0])}", file=sys.stderr)
        return EXIT_FAILED
    if report.flags:
        for flag in report.flags:
            print(f"verify: FLAG {flag_line(flag)}", file=sys.stderr)
        return EXIT_FLAGGED
    return EXIT_OK


def _cmd_bundle(args: argparse.Namespace) -> int:
    """Fetch every file a verifier needs from the live nodes into one bundle."""
    from fedpetition.verify.http import HttpSource

    source = HttpSource(args.url)
    bar = ProgressBar("bundle")
    try:
        members = list(source.members())
        with ZipBundleWriter(args.out) as writer:
            for done, member in enumerate(members, start=1):
                writer.add(member, source.read(member))
                bar(done, len(members))
    except OSError as e:
        raise CommandError(f"cannot write {args.out}: {e.strerror or e}") from e
    finally:
        bar.close()
        source.close()
    print(f"wrote {args.out}: petition {source.petition_id}, {len(members):,} files; "
          f"check it with: fedpetition verify {args.out}")
    return EXIT_OK


def _cmd_verify_receipt(args: argparse.Namespace) -> int:
    try:
        with open(args.receipt, "rb") as f:
            data = f.read(1 << 20)
    except OSError as e:
        raise CommandError(f"receipt-format: cannot read {args.receipt}: {e.strerror}") from e
    try:
        receipt = Receipt.decode(data)
    except FedPetitionError as e:
        raise CommandError(f"receipt-format: {e}") from e
    try:
        checked = verify_receipt(receipt)
    except VerificationError as e:
        for step in RECEIPT_STEPS:
            if step == e.step:
                print(f"FAIL  {step}  {e.reason}")
                break
            print(f"PASS  {step}")
        raise CommandError(str(e)) from e
    for step in RECEIPT_STEPS:
        print(f"PASS  {step}")
    cp = checked.checkpoint
    if args.online:
        from fedpetition.verify.http import latest_consistency

        try:
            latest, proof, _ = latest_consistency(cp, receipt.log_key, receipt.witnesses,
                                                  receipt.quorum)
            check_consistency(cp, latest, proof)
        except FedPetitionError as e:
            print(f"FAIL  {STEP_ONLINE}  {e}")
            raise CommandError(f"{STEP_ONLINE}: {e}") from e
        print(f"PASS  {STEP_ONLINE}  the log now has {latest.size:,} entries and still "
              "contains this checkpoint")
    print("OK: this signature is in the log at that checkpoint")
    return EXIT_OK


def _cmd_init(args: argparse.Namespace) -> int:
    from fedpetition.node.server import init_node

    name = args.name or f"127.0.0.1:{args.port}"
    url = args.public_url or f"http://{name}"
    path = _run(init_node(Path(args.dir), name, url, listen_port=args.port,
                          database_url=args.database))
    print(f"created a node in {args.dir}: edit {path}, then run: fedpetition serve --config "
          f"{path}")
    return EXIT_OK


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="the node's config (default ./fedpetition.toml)")


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or "fedpetition.toml")


def _cmd_serve(args: argparse.Namespace) -> int:
    from fedpetition.node.server import serve

    serve(_config_path(args), args.workers)
    return EXIT_OK


def _cmd_migrate(args: argparse.Namespace) -> int:
    from fedpetition.node.config import load_config
    from fedpetition.node.operations import migrate

    applied, version = _run(migrate(load_config(_config_path(args))))
    done = ", ".join(map(str, applied)) if applied else "none pending"
    print(f"migrations applied: {done}; database schema is now version {version}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from fedpetition.node.config import load_config
    from fedpetition.node.operations import export_node

    out = Path(args.out)
    if out.exists():
        raise CommandError(f"{out} exists: refusing to overwrite it")
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as f:
            counts = _run(export_node(load_config(_config_path(args)), f))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(out)
    print(f"exported {sum(counts.values()):,} rows of {len(counts)} tables to {out} "
          f"({counts['signatures']:,} signatures, sealed)")
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    from fedpetition.node.config import load_config
    from fedpetition.node.operations import import_node

    source = Path(args.file)
    if not source.is_file():
        raise CommandError(f"{source}: no such file")
    with source.open("rb") as f:
        counts = _run(import_node(load_config(_config_path(args)), f))
    print(f"imported {sum(counts.values()):,} rows of {len(counts)} tables "
          f"({counts['signatures']:,} signatures)")
    return EXIT_OK


def _cmd_backup(args: argparse.Namespace) -> int:
    from fedpetition.node.config import load_config
    from fedpetition.node.operations import backup_sqlite

    pages = backup_sqlite(load_config(_config_path(args)), Path(args.out))
    print(f"backed up the database to {args.out} ({pages:,} pages, integrity checked)")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from fedpetition.node.demo import demo

    configs = [Path(c) for c in args.configs] or sorted(Path("nodes").glob("*.toml"))
    if not configs:
        raise CommandError("no node configs given, and none in nodes/")
    demo(configs, args.signers)
    return EXIT_OK


def _cmd_admin(args: argparse.Namespace) -> int:
    import getpass

    from fedpetition.node import server

    config = _config_path(args)
    if args.admin == "create-organiser":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(
            "password (10 characters or more): ")
        token = server.create_organiser(config, args.name, password)
        print(f"organiser {args.name} created; API token (shown once): {token}")
    elif args.admin == "token":
        print(server.new_token(config, args.name))
    return EXIT_OK


def _cmd_consent_key(args: argparse.Namespace) -> int:
    from fedpetition.node.consented import new_key_pair

    out = Path(args.out)
    if out.exists():
        raise CommandError(f"{out} exists: refusing to overwrite a key")
    private, public = new_key_pair()
    with os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(private + "\n")
    print(f"private key written to {out} (keep it; it opens the lists)")
    print(f"public key, to paste on the node's organiser page: {public}")
    return EXIT_OK


def _cmd_open_consented(args: argparse.Namespace) -> int:
    from fedpetition.node.consented import open_list

    private = Path(args.key).read_text(encoding="utf-8")
    text = open_list(private, Path(args.file).read_bytes())
    if args.out:
        with os.fdopen(os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                       "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.out} ({text.count(chr(10)) - 1} names)")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedpetition",
        description="Federated petitions: simulate published logs, verify a federated tally, "
                    "check a signer's receipt.")
    parser.add_argument("--version", action="version", version=f"fedpetition {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a realistic bundle of a federation's logs")
    p.add_argument("--nodes", type=int, required=True, help="number of hosting nodes")
    p.add_argument("--signatures", type=int, required=True, help="sign entries in all")
    p.add_argument("--duplicates", type=int, default=0, help="signers who sign on two nodes")
    p.add_argument("--withdrawals", type=int, default=0, help="signers who withdraw")
    p.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    p.add_argument("--out", required=True, help="bundle file to write")
    p.add_argument("--receipt", help="also write one signer's receipt to this file")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("verify", help="recompute and check a federated tally",
                       epilog="exit status: 0 verified; 1 not verified; 2 usage error; 3 "
                              "verified, but the report raises a flag such as "
                              "evaluations-exceeded (spec §11.7, §11.9)")
    p.add_argument("source", help="a bundle file, a bundle URL, or a petition URL")
    p.add_argument("--json", action="store_true", help="print a machine-readable report")
    p.add_argument("--origin-key", help="the petition origin's verifier key, if known")
    p.add_argument("--exclude", action="append", metavar="NODE",
                   help="recompute without this host's log (repeatable)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes checking entries (default: one per core; 1: no pool)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("bundle", help="fetch a petition's published files into a bundle")
    p.add_argument("url", help="the petition's URL on its origin node")
    p.add_argument("--out", required=True, help="bundle file to write")
    p.set_defaults(func=_cmd_bundle)

    p = sub.add_parser("verify-receipt", help="check a signer's receipt")
    p.add_argument("receipt", help="a receipt file")
    p.add_argument("--online", action="store_true",
                   help="also fetch the log's latest checkpoint and check it extends the "
                        "receipt's")
    p.set_defaults(func=_cmd_verify_receipt)

    p = sub.add_parser("init", help="create a node: config, keys, empty database")
    p.add_argument("dir", help="the node's folder (created)")
    p.add_argument("--name", help="the node's name, host[:port] of its public URL")
    p.add_argument("--public-url", help="e.g. https://petitions.example.org")
    p.add_argument("--port", type=int, default=8441, help="port to listen on (default 8441)")
    p.add_argument("--database", metavar="URL",
                   help="postgresql://user@host/db[?schema=NAME] (default: a SQLite file in "
                        "the folder)")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("serve", help="run a node")
    _config_option(p)
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes on one port (PostgreSQL only; default 1)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("migrate", help="apply the database's pending schema migrations")
    _config_option(p)
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("export", help="write a stopped node's database to a file")
    _config_option(p)
    p.add_argument("--out", required=True, help="export file to write")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("import", help="load an export into a node's new, empty database")
    _config_option(p)
    p.add_argument("file", help="an export file")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("backup", help="copy a SQLite node's database while it runs")
    _config_option(p)
    p.add_argument("--out", required=True, help="backup file to write")
    p.set_defaults(func=_cmd_backup)

    p = sub.add_parser("demo", help="a local federation co-hosting a petition (make run)")
    p.add_argument("configs", nargs="*",
                   help="node configs, the origin first (default: nodes/*.toml)")
    p.add_argument("--signers", type=int, default=40,
                   help="simulated signers spread over the nodes (default 40)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("consent-key",
                       help="make the key pair an organiser's consented lists are encrypted to")
    p.add_argument("--out", required=True, help="file for the private key (created, 0600)")
    p.set_defaults(func=_cmd_consent_key)

    p = sub.add_parser("open-consented", help="open a consented list downloaded from a node")
    p.add_argument("file", help="the .fpc file")
    p.add_argument("--key", required=True, help="the private key file from consent-key")
    p.add_argument("--out", help="write the CSV here (created, 0600) instead of printing it")
    p.set_defaults(func=_cmd_open_consented)

    p = sub.add_parser("admin", help="organiser accounts")
    _config_option(p)
    admin = p.add_subparsers(dest="admin", required=True)
    a = admin.add_parser("create-organiser", help="create an organiser account")
    a.add_argument("name")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    a = admin.add_parser("token", help="issue a new API token for an organiser")
    a.add_argument("name")
    p.set_defaults(func=_cmd_admin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (CommandError, FedPetitionError) as e:
        print(f"{parser.prog} {args.command}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # a file or folder named on the command line, say
        where = f": {e.filename}" if e.filename else ""
        print(f"{parser.prog} {args.command}: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
