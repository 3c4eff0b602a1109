#!/usr/bin/env bash
# with-progress.sh WHAT NOTE COMMAND...: runs COMMAND, saying "WHAT NOTE" at once and
# "still WHAT (Ns)" every 10 s until it ends, so that a first `make run`, which compiles
# the AWS emulator and every function for minutes, never sits silent. Exits with
# COMMAND's status.
set -u
what=$1 note=$2
shift 2
start=$(date +%s)
echo "devstack: [   0s] $what $note" >&2
"$@" &
pid=$!
(
	while sleep 10; do
		printf 'devstack: [%4ds] still %s\n' "$(($(date +%s) - start))" "$what" >&2
	done
) &
ticker=$!
wait "$pid"
status=$?
kill "$ticker" 2>/dev/null
wait "$ticker" 2>/dev/null
exit "$status"
