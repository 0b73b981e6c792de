# shellcheck shell=bash
# batchai shell library: functions shared by launcher.sh (job pods) and setup.sh (setup-task pods).
# launcher.sh sources this file from its own folder; setup.sh runs with this file prepended to it.
# The including script defines log MESSAGE and finish CODE MESSAGE before calling these functions.
# Written for bash >= 4.3 (old toolkit images).

# Kubernetes copies this file into the pod status (containerStatuses[].state.terminated.message),
# which is how the operator tells a jobPreparation or mount failure from a task failure.
write_termination_message() {
    local file=${BATCHAI_TERMINATION_LOG:-/dev/termination-log}
    if [[ -n ${BATCHAI_TERMINATION_LOG:-} || -w $file ]]; then
        printf '%s\n' "$1" >"$file" 2>/dev/null || true
    fi
}

# ---- $VAR expansion -------------------------------------------------------------------------------
# Batch AI expanded spec values with a shell on the node. Only $NAME and ${NAME} are expanded here
# (unset names become empty, other '$' stay literal): no command substitution from env values.
_RE_BRACED='^\$\{([A-Za-z_][A-Za-z0-9_]*)\}(.*)$'
# shellcheck disable=SC2016  # regular expressions, not expansions
_RE_PLAIN='^\$([A-Za-z_][A-Za-z0-9_]*)(.*)$'

# expand_value VALUE: sets REPLY to VALUE with $NAME / ${NAME} replaced.
expand_value() {
    local rest=$1 out=""
    while [[ $rest == *'$'* ]]; do
        out+=${rest%%\$*}
        rest=\$${rest#*\$}
        if [[ $rest =~ $_RE_BRACED || $rest =~ $_RE_PLAIN ]]; then
            out+=${!BASH_REMATCH[1]:-}
            rest=${BASH_REMATCH[2]}
        else
            out+='$'
            rest=${rest:1}
        fi
    done
    REPLY=$out$rest
}

# ---- unmanaged file systems ------------------------------------------------------------------------
# Batch AI mounted unmanagedFileSystems by running mountCommand with the mount path appended.
# BATCHAI_UNMANAGED_MOUNTS holds one "<mountCommand><TAB><path>" per line. The command itself is not
# logged: it may carry credentials.
run_unmanaged_mounts() {
    local cmd path code
    while IFS=$'\t' read -r cmd path; do
        [[ -n $cmd ]] || continue
        log "mounting $path"
        mkdir -p -- "$path" || finish 1 "MountFailed: $path: cannot create the mount point"
        bash -c "$cmd $(printf '%q' "$path")" </dev/null
        code=$?
        if ((code != 0)); then finish "$code" "MountFailed: $path: exit code $code"; fi
    done <<<"${BATCHAI_UNMANAGED_MOUNTS:-}"
}
