"""The ``fedpetition`` command.

Every failure ends in a non-zero exit and one line on stderr naming what failed;
no traceback reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import ExitStack

from fedpetition import __version__
from fedpetition.core.errors import FedPetitionError, VerificationError
from fedpetition.core.notes import VerifierKey
from fedpetition.core.receipts import RECEIPT_STEPS, Receipt, verify_receipt
from fedpetition.core.verification import Verification, unreadable_report
from fedpetition.simulate import SimulationSpec, simulate
from fedpetition.verify.archive import ZipBundleWriter, ZipSource
from fedpetition.verify.parallel import default_workers, zip_runner
from fedpetition.verify.render import ProgressBar, one_line, print_json, print_text

EXIT_OK, EXIT_FAILED = 0, 1  # argparse exits 2 on a usage error


class CommandError(Exception):
    """A one-line reason to stop with a non-zero exit."""


def _cmd_simulate(args: argparse.Namespace) -> int:
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
    try:
        with ZipSource(args.source) as source, ExitStack() as stack:
            runner = None
            if workers > 1:
                runner = stack.enter_context(zip_runner(args.source, workers))
            report = Verification(source, origin_key=origin_key, exclude=args.exclude or (),
                                  progress=bar, runner=runner).run()
    except FedPetitionError as e:
        # The archive itself is unreadable: still a report, with its first step failed.
        report = unreadable_report(str(e))
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
    print(f"\nentry {receipt.index:,} of {cp.size:,} in {receipt.log}")
    print(f"petition {receipt.petition}, signed by {checked.record.name} <{checked.record.email}>")
    print(f"cosigned by {', '.join(checked.cosigners) or 'no witness'}")
    print("OK: this signature is in the log at that checkpoint")
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

    p = sub.add_parser("verify", help="recompute and check a federated tally")
    p.add_argument("source", help="a bundle file")
    p.add_argument("--json", action="store_true", help="print a machine-readable report")
    p.add_argument("--origin-key", help="the petition origin's verifier key, if known")
    p.add_argument("--exclude", action="append", metavar="NODE",
                   help="recompute without this host's log (repeatable)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes checking entries (default: one per core; 1: no pool)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("verify-receipt", help="check a signer's receipt offline")
    p.add_argument("receipt", help="a receipt file")
    p.set_defaults(func=_cmd_verify_receipt)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CommandError as e:
        print(f"{parser.prog} {args.command}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
