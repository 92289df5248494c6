#!/usr/bin/env bash
# A signer checks the receipt their node gave them, offline.
# Run from the repository root after `make test` (or `make venv`).
set -euo pipefail
bin=.venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

$bin/fedpetition simulate --nodes 3 --signatures 2000 --seed 7 \
    --out "$work/federation.zip" --receipt "$work/receipt.fpr"

# The receipt holds the entry, an inclusion proof, the cosigned checkpoint and the opening of
# the entry's commitment (the signer's own name and email: keep it, don't publish it).
$bin/fedpetition verify-receipt "$work/receipt.fpr"
ls -l "$work/receipt.fpr"
