#!/usr/bin/env bash
# An association joins a petition started elsewhere: two nodes on this machine, node A starts
# a petition, node B asks to co-host it and A's organiser admits B; a signer signs on B and
# checks their receipt, another signs on A, both nodes show the same federated count, and the
# verifier recounts it from the live nodes and from a bundle.
# Run from the repository root after `make venv` (or `make test`). Needs curl. Nothing is
# left behind: the nodes live in a temporary folder and are stopped at the end.
set -euo pipefail
bin=.venv/bin
work=$(mktemp -d)
pids=()

cleanup() {
    local status=$? pid
    for pid in ${pids[@]+"${pids[@]}"}; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in ${pids[@]+"${pids[@]}"}; do
        wait "$pid" 2>/dev/null || true
    done
    if ((status != 0)); then
        for node in a b; do
            if [[ -f $work/$node.log ]]; then
                echo "--- the last lines of $work/$node.log:" >&2
                tail -n 20 "$work/$node.log" >&2
            fi
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

# call METHOD URL [TOKEN [JSON]]: one request to a node's JSON API; prints the answer, and
# stops the walkthrough on an HTTP error.
call() {
    local method=$1 url=$2 token=${3-} data=${4-} code
    local args=(-sS -X "$method" -o "$work/answer" -w '%{http_code}')
    if [[ -n $token ]]; then args+=(-H "Authorization: Bearer $token"); fi
    if [[ -n $data ]]; then args+=(-H 'Content-Type: application/json' --data "$data"); fi
    rm -f "$work/answer"
    code=$(curl "${args[@]}" "$url") || return 1
    if ((code >= 400)); then
        echo "$method $url: HTTP $code: $(cat "$work/answer")" >&2
        return 1
    fi
    cat "$work/answer"
}

# json EXPR: evaluate a Python expression over the JSON document on stdin, bound to `d`
# (nothing on stdin, after a failed call: fail quietly, the call said why).
json() {
    $bin/python -c '
import json, sys
text = sys.stdin.read()
if not text:
    sys.exit(1)
d = json.loads(text)
print(eval(sys.argv[1]))' "$1"
}

# wait_for SECONDS WHAT COMMAND...: run COMMAND every 0.2 s until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        if ((SECONDS >= deadline)); then
            echo "gave up waiting for $what" >&2
            return 1
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------
say "1. Two associations each create a node, with an organiser account"
read -r port_a port_b < <($bin/python -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
name_a=127.0.0.1:$port_a name_b=127.0.0.1:$port_b
url_a=http://$name_a url_b=http://$name_b

# make_node DIR NAME PORT: `fedpetition init`, then the three settings this walkthrough needs.
make_node() {
    local config=$1/fedpetition.toml setting
    $bin/fedpetition init "$1" --name "$2" --port "$3" > /dev/null
    # The generated config lists every setting, commented out with its default. Three change:
    # - dev_allow_loopback: these two nodes talk to each other on 127.0.0.1. A real node must
    #   NOT set it: it refuses loopback, private and link-local peers, so that nobody can make
    #   it fetch from its own network through federation (SSRF);
    # - period_seconds and refresh_seconds: checkpoints and federated counts follow within a
    #   second, for a walkthrough (the defaults are lighter on a real node).
    sed -i.orig \
        -e 's/^# *dev_allow_loopback = .*/dev_allow_loopback = true/' \
        -e 's/^# *period_seconds = .*/period_seconds = 0.5/' \
        -e 's/^# *refresh_seconds = .*/refresh_seconds = 1.0/' "$config"
    for setting in 'dev_allow_loopback = true' 'period_seconds = 0.5' 'refresh_seconds = 1.0'; do
        grep -qx "$setting" "$config" || { echo "could not set $setting in $config" >&2; exit 1; }
    done
    echo "node $2: $config"
}

# organiser CONFIG NAME: create an organiser account, print its API token (shown only once).
organiser() {
    echo "a password for $2 only" |
        $bin/fedpetition admin --config "$1" create-organiser "$2" --password-stdin |
        sed -n 's/.*API token (shown once): //p'
}

make_node "$work/a" "$name_a" "$port_a"
make_node "$work/b" "$name_b" "$port_b"
token_a=$(organiser "$work/a/fedpetition.toml" alice)
token_b=$(organiser "$work/b/fedpetition.toml" bob)
[[ -n $token_a && -n $token_b ]] || { echo "no organiser token printed" >&2; exit 1; }
echo "organisers: alice on A ($name_a), bob on B ($name_b), each with an API token"

# ---------------------------------------------------------------------------------------------
say "2. Both nodes start (logs in $work/a.log and b.log)"
up() {  # up NODE URL: the node answers, or stop if its process died
    local pid=${pids[$1]}
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the node at $2 stopped" >&2
        exit 1
    fi
    curl -sf -o /dev/null "$2/api/petitions"
}
$bin/fedpetition serve --config "$work/a/fedpetition.toml" > "$work/a.log" 2>&1 &
pids+=($!)
$bin/fedpetition serve --config "$work/b/fedpetition.toml" > "$work/b.log" 2>&1 &
pids+=($!)
wait_for 30 "node A to answer" up 0 "$url_a"
wait_for 30 "node B to answer" up 1 "$url_b"
echo "A answers on $url_a, B on $url_b"

# ---------------------------------------------------------------------------------------------
say "3. Alice starts a petition on A; Bob asks B to host it; Alice admits B"
slug=bike-lanes
petition_url=$url_a/petitions/$slug
call POST "$url_a/api/petitions" "$token_a" "{
    \"slug\": \"$slug\", \"languages\": [\"en\", \"fr\"],
    \"title\": {\"en\": \"Safe bike lanes on every main road\",
              \"fr\": \"Des pistes cyclables sûres sur chaque grand axe\"},
    \"text\": \"We ask the city for protected bike lanes on every main road by 2030.\",
    \"addressee\": \"The city council\",
    \"deadline\": $(($(date +%s) + 90 * 86400)), \"thresholds\": [10, 100]}" |
    json '"created " + d["id"] + ", version " + str(d["version"]) + ", " + d["status"]'
echo "its URL, which other nodes ask to host: $petition_url"

# B fetches the petition's signed versions and host roster from A, checks them against A's
# key (pinned from now on), stores the petition and sends A an Announce: a request to host.
call POST "$url_b/api/hosting" "$token_b" "{\"url\": \"$petition_url\"}" |
    json '"B stores " + d["id"] + " as " + d["slug"] + "; hosting yet: " + str(d["hosting"])'

# Until A admits it, B shows the petition closed and refuses signatures.
call GET "$url_b/api/petitions/$slug" | json '"on B the petition is " + d["status"]'
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$url_b/api/petitions/$slug/signatures" \
    -H 'Content-Type: application/json' -d '{"name": "Early Bird", "email": "early@example.org"}')
echo "a signature on B now is refused: HTTP $code"

# A's config has no [federation] accept_hosts, so the request waits for an organiser. (A node
# whose accept_hosts named 127.0.0.1:$port_b, or "*", would admit B at once: nodes/a.toml
# does that for make run.)
requested() {
    call GET "$url_a/api/petitions/$slug/host-requests" "$token_a" > "$work/requests.json" &&
        grep -q "\"$name_b\"" "$work/requests.json"
}
wait_for 30 "B's request to reach A" requested
json '"host requests on A: " + ", ".join(r["node"] + " " + r["status"] for r in d)' \
    < "$work/requests.json"

# Accepting signs a new host roster (A and B, each witnessing the other's log), answers B with
# an Accept and sends the new roster to B.
call POST "$url_a/api/petitions/$slug/host-requests/$name_b" "$token_a" '{"accept": true}' |
    json '"Alice answers: " + d["node"] + " " + d["status"]'

admitted() {
    call GET "$url_b/api/petitions/$slug" > "$work/b-petition.json" &&
        call GET "$url_b/api/petitions/$slug/federated" > "$work/b-federated.json" &&
        [[ $(json 'd["status"]' < "$work/b-petition.json") == open ]] &&
        [[ $(json 'len(d["hosts"])' < "$work/b-federated.json") == 2 ]]
}
wait_for 30 "B to be admitted" admitted
json '"on B the petition is now " + d["status"]' < "$work/b-petition.json"
json '"its hosts: " + ", ".join(h["name"] for h in d["hosts"])' < "$work/b-federated.json"

# ---------------------------------------------------------------------------------------------
say "4. Camille signs on B, confirms from the mailed link, and checks her receipt"
call POST "$url_b/api/petitions/$slug/signatures" "" \
    '{"name": "Camille Martin", "email": "camille@example.org", "region": "FR-IDF",
      "language": "en"}' | json 'd["status"] + ": " + d["message"]'

# With no SMTP server configured, B writes each mail as an .eml file in its outbox. Camille's
# name and email stay on B: they are in no log, tile or bundle.
# mailed_token NODE_DIR URL EMAIL: the secret token of the /s/<token> link mailed to EMAIL.
mailed_token() {
    local mail link
    mail=$(grep -l "^To: $3" "$1"/outbox/*.eml | tail -n 1) &&
        link=$(grep -o "$2/s/[A-Za-z0-9_-]*" "$mail" | head -n 1) ||
        { echo "no confirmation link for $3 in $1/outbox" >&2; return 1; }
    echo "the mail in $(basename "$1")/outbox/$(basename "$mail") links to $2/s/<secret token>" >&2
    echo "${link##*/s/}"
}
token=$(mailed_token "$work/b" "$url_b" camille@example.org)

# Opening the link shows a Confirm button (a GET never confirms); pressing it is this POST.
call POST "$url_b/api/signatures/$token/confirm" | json '"signature " + d["status"]'

# The receipt exists once the entry is in B's log under a checkpoint A has cosigned (409
# until then): B appends within [sequencer] period_seconds and asks A, its witness, to cosign.
receipt_ready() {
    [[ $(curl -sS -o "$work/receipt.fpr" -w '%{http_code}' \
        "$url_b/api/signatures/$token/receipt") == 200 ]]
}
wait_for 60 "Camille's receipt" receipt_ready
call GET "$url_b/api/signatures/$token" |
    json '"signature " + d["status"] + ", entry " + str(d["log_index"]) + " of the log on B"'
echo "receipt saved ($(wc -c < "$work/receipt.fpr" | tr -d ' ') bytes); Camille checks it," \
    "and that B's log still holds it:"
$bin/fedpetition verify-receipt "$work/receipt.fpr" --online

# ---------------------------------------------------------------------------------------------
say "5. Dominique signs on A; both nodes count both signatures"
call POST "$url_a/api/petitions/$slug/signatures" "" \
    '{"name": "Dominique Petit", "email": "dominique@example.org", "language": "en"}' > /dev/null
token=$(mailed_token "$work/a" "$url_a" dominique@example.org)
call POST "$url_a/api/signatures/$token/confirm" | json '"signature on A " + d["status"]'

# Each node follows both logs: it fetches every new witnessed checkpoint, checks each new
# entry against it and merges the logs (a person who signed on both would count once).
counted() {
    local url
    for url in "$url_a" "$url_b"; do
        call GET "$url/api/petitions/$slug/federated" > "$work/federated.json" || return 1
        [[ $(json 'd["total"] == 2 and all(h.get("size") is not None and h.get("problem") is None
                                          for h in d["hosts"])' \
            < "$work/federated.json") == True ]] || return 1
    done
}
wait_for 60 "both nodes to count both signatures" counted
for url in "$url_a" "$url_b"; do
    printf '%s/api/petitions/%s/federated: ' "$url" "$slug"
    call GET "$url/api/petitions/$slug/federated" |
        json '"total " + str(d["total"]) + "; " + "; ".join(
            h["name"] + " counted " + str(h["counted"]) + ", cosigned by "
            + ", ".join(h["cosigners"]) for h in d["hosts"])'
done

# ---------------------------------------------------------------------------------------------
say "6. Anyone recounts from the live nodes: every step by name"
# The verifier reads A's petition and roster, then each host's key, checkpoint and tiles.
$bin/fedpetition verify "$petition_url"

say "7. ... or saves what it reads as a bundle, and checks that offline"
$bin/fedpetition bundle "$petition_url" --out "$work/bundle.zip"
$bin/fedpetition verify "$work/bundle.zip"
