# Stage timing for .ci/run and tests/run.sh (sourced by both, bash).
#
#   stage NAME COMMAND [ARGS...]   runs the command as a stage: prints a header
#                                  with the time into the run, then writes the
#                                  stage's seconds and result to the stage log
#                                  and returns the command's exit status.
#   stage_table                    prints every stage so far with its minutes
#                                  and seconds, and the total.
#
# The stage log (VRRPFW_STAGE_LOG) is shared with child scripts through the
# environment: under .ci/run, tests/run.sh's table also lists .ci/run's setup
# and build.  The first script that sources this file makes the log, and
# removes it when it exits.  `trap stage_finish EXIT` prints the table when
# the script ends, a failed stage included.

if [ -z "${VRRPFW_STAGE_LOG:-}" ]; then
    VRRPFW_STAGE_LOG="$(mktemp "${TMPDIR:-/tmp}/vrrpfw-stages.XXXXXX")"
    export VRRPFW_STAGE_LOG
    export VRRPFW_STAGE_START="$(date +%s)"
    STAGE_LOG_OWNER=1
else
    STAGE_LOG_OWNER=0
    : "${VRRPFW_STAGE_START:=$(date +%s)}"
fi

_stage_clock() {
    local s=$(( $(date +%s) - VRRPFW_STAGE_START ))
    printf '%d min %d s' $(( s / 60 )) $(( s % 60 ))
}

stage() {
    local name="$1" t0 rc=0
    shift
    echo "== [$(_stage_clock)] $name"
    t0="$(date +%s)"
    "$@" || rc=$?
    printf '%s\t%d\t%s\n' "$name" $(( $(date +%s) - t0 )) \
        "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")" >> "$VRRPFW_STAGE_LOG"
    return "$rc"
}

stage_table() {
    local name secs result total
    [ -f "$VRRPFW_STAGE_LOG" ] || return 0
    echo "== stage times"
    while IFS=$'\t' read -r name secs result; do
        printf '  %3d min %2d s  %-16s %s\n' $(( secs / 60 )) $(( secs % 60 )) "$result" "$name"
    done < "$VRRPFW_STAGE_LOG"
    total=$(( $(date +%s) - VRRPFW_STAGE_START ))
    printf '  %3d min %2d s  %-16s %s\n' $(( total / 60 )) $(( total % 60 )) "" "total (wall clock)"
}

stage_finish() {
    # EXIT trap: the table (once: .ci/run prints it only where tests/run.sh
    # did not get to), then the log is removed by whoever made it.
    local rc=$? rows
    rows="$(wc -l < "$VRRPFW_STAGE_LOG" 2>/dev/null || echo 0)"
    if [ "$STAGE_LOG_OWNER" -eq 0 ] || [ "$(cat "$VRRPFW_STAGE_LOG.printed" 2>/dev/null)" != "$rows" ]; then
        stage_table
        echo "$rows" > "$VRRPFW_STAGE_LOG.printed"
    fi
    if [ "$STAGE_LOG_OWNER" -eq 1 ]; then
        rm -f "$VRRPFW_STAGE_LOG" "$VRRPFW_STAGE_LOG.printed"
    fi
    return "$rc"
}
