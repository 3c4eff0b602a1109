#!/usr/bin/env bash
# with-progress.sh WHAT NOTE COMMAND...: runs COMMAND, saying "WHAT NOTE" at once and
# "still WHAT" every 8 s (under 10, with room for a busy machine) until it ends, so that a
# first `make run`, which compiles the AWS emulator and every function for minutes, never
# sits silent, and "done WHAT" when it succeeds. Exits with COMMAND's status.
set -u
what=$1 note=$2
shift 2
start=$(date +%s)
script=$$
echo "devstack: [   0s] $what $note" >&2
"$@" &
pid=$!
(
	# Sleeping in the background and waiting for it lets a TERM end the ticker at once,
	# not after the sleep: a warm build takes about a second. It also stops when the
	# script is gone (Ctrl-C), as a background job ignores SIGINT.
	nap=
	trap 'kill "$nap" 2>/dev/null; exit 0' TERM
	while kill -0 "$script" 2>/dev/null; do
		sleep 8 >/dev/null 2>&1 &
		nap=$!
		wait "$nap"
		kill -0 "$script" 2>/dev/null || break
		printf 'devstack: [%4ds] still %s\n' "$(($(date +%s) - start))" "$what" >&2
	done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null' EXIT
wait "$pid"
status=$?
kill "$ticker" 2>/dev/null
wait "$ticker" 2>/dev/null
if [ "$status" -eq 0 ]; then
	printf 'devstack: [%4ds] done %s\n' "$(($(date +%s) - start))" "$what" >&2
fi
exit "$status"
