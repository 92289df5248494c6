#!/usr/bin/env bash
# A verifier recomputes a federated tally from a bundle and sees every check by name.
# Run from the repository root after `make test` (or `make venv`).
set -euo pipefail
bin=.venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Four associations co-host a petition; 5,000 sign entries, 150 people signed on two
#    nodes, 40 withdrew. The bundle is exactly what the nodes publish.
$bin/fedpetition simulate --nodes 4 --signatures 5000 --duplicates 150 --withdrawals 40 \
    --seed 42 --out "$work/federation.zip"

# 2. Recompute the tally. Every step is printed; the total is 5000 - 150 - 40 = 4810.
$bin/fedpetition verify "$work/federation.zip"

# 3. Pin the origin's key (obtained out of band, e.g. from the association's site), and ask
#    for a machine-readable report.
origin_key=$($bin/fedpetition verify "$work/federation.zip" --json |
    $bin/python -c 'import json, sys; print(json.load(sys.stdin)["origin_key"])')
$bin/fedpetition verify "$work/federation.zip" --origin-key "$origin_key" --json > "$work/report.json"
$bin/python -c 'import json, sys; r = json.load(open(sys.argv[1])); print("total", r["tally"]["total"])' "$work/report.json"

# 4. Recompute without one node, as a verifier who distrusts it would.
$bin/fedpetition verify "$work/federation.zip" --exclude node-d.example | tail -n 12

# 5. Change one byte in one entry: the verifier names the step, the log and the entry.
$bin/python - "$work/federation.zip" "$work/tampered.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as src, zipfile.ZipFile(sys.argv[2], "w") as dst:
    for info in src.infolist():
        data = src.read(info)
        if info.filename.startswith("node-b.example/") and "/tile/entries/000" in info.filename:
            data = data[:200] + bytes([data[200] ^ 1]) + data[201:]
        dst.writestr(info, data)
PY
if $bin/fedpetition verify "$work/tampered.zip" > /dev/null; then
    echo "unexpected: the tampered bundle verified" >&2; exit 1
fi
