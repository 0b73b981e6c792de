#!/usr/bin/env bash
# batchai launcher: runs in every pod of a TrainingJob (pod = Batch AI node, index = node index).
#
# Steps: expand $VARS in AZ_BATCHAI_* values -> unmanaged mounts -> create the stdouterr, job temp and
# output directories -> run jobPreparation -> (multi-node MPI toolkits) workers exec sshd, node 0 waits
# for them -> run this node's tasks from tasks-<index>.sh -> exit with the code that decides the node.
#
# Reads only environment variables (the full contract is in batchai_operator/launcher/commands.py):
#   BATCHAI_CONFIG_DIR       folder with tasks-<index>.sh and hostfile (default: this script's folder)
#   BATCHAI_NODE_INDEX       node index (default JOB_COMPLETION_INDEX, else 0)
#   BATCHAI_NODE_COUNT       number of nodes (default: number of BATCHAI_HOSTS, else 1)
#   BATCHAI_NODE_ID          node id used in per-node file names (default $HOSTNAME)
#   BATCHAI_HOSTS            comma-separated DNS names of all nodes, index order (multi-node)
#   BATCHAI_JOB_PREPARATION  jobPreparation command line (optional)
#   BATCHAI_SSH_DIR          folder with ssh-privatekey and ssh-publickey (multi-node MPI toolkits only)
#   BATCHAI_SSH_PORT         sshd port (default 22)
#   BATCHAI_SSHD_RUN_DIR     sshd privilege separation folder (default /run/sshd)
#   BATCHAI_WAIT_TIMEOUT     seconds node 0 waits for the other nodes' sshd (default 900)
#   BATCHAI_TERMINATION_LOG  termination message file (default /dev/termination-log, if writable)
#   BATCHAI_EXPAND_VARS      extra variable names whose $VARS are expanded like AZ_BATCHAI_* ones
#   BATCHAI_UNMANAGED_MOUNTS unmanagedFileSystems, one "<mountCommand><TAB><path>" per line; each runs
#                            as "<mountCommand> <path>" (Batch AI appended the path), needs privileges
#
# Termination message (first line) and exit code:
#   JobPreparationFailed: exit code N   jobPreparation failed; the launcher exits with N
#   MountFailed: <path>: exit code N    an unmanaged mount command failed; the launcher exits with N
#   LauncherFailed: <reason>            the launcher itself failed (bad config, mkdir, wait timeout); exit 1
#   JobFailed: exit code N              a primary task failed; the launcher exits with N
# Exit codes pass through unchanged; a process killed by signal S gives 128+S.
#
# Written for bash >= 4.3 (old toolkit images): no wait -n -p, no ${var@Q}, no EPOCHSECONDS.

LAUNCHER_ERROR=1

log() {
    local line
    line="[batchai $(date -u +%Y-%m-%dT%H:%M:%SZ) node ${NODE_INDEX:-?}] $*"
    printf '%s\n' "$line" >&2
    if [[ -n ${EXEC_LOG:-} ]]; then printf '%s\n' "$line" >>"$EXEC_LOG" 2>/dev/null; fi
}

# Kubernetes copies this file into the pod status (containerStatuses[].state.terminated.message),
# which is how the operator tells a jobPreparation failure from a task failure.
write_termination_message() {
    local file=${BATCHAI_TERMINATION_LOG:-/dev/termination-log}
    if [[ -n ${BATCHAI_TERMINATION_LOG:-} || -w $file ]]; then
        printf '%s\n' "$1" >"$file" 2>/dev/null || true
    fi
}

# finish CODE MESSAGE: record why the node ended and exit with CODE.
finish() {
    log "$2"
    write_termination_message "$2"
    exit "$1"
}

fail() {
    finish "$LAUNCHER_ERROR" "LauncherFailed: $*"
}

# ---- $VAR expansion -------------------------------------------------------------------------------
# Batch AI expanded spec values with a shell on the node. Only $NAME and ${NAME} are expanded here
# (unset names become empty, other '$' stay literal): no command substitution from env values.
# >>> expand_value: also embedded in the setup task's script (build/cluster.py); keep it standalone.
_RE_BRACED='^\$\{([A-Za-z_][A-Za-z0-9_]*)\}(.*)$'
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
# <<< expand_value

expand_environment() {
    local roots="AZ_BATCHAI_MOUNT_ROOT AZ_BATCHAI_JOB_MOUNT_ROOT AZ_BATCHAI_JOB_TEMP AZ_BATCHAI_SHARED_JOB_TEMP"
    local -a names=()
    local name
    # Mount roots first: the other values are usually written relative to them.
    for name in $roots; do names+=("$name"); done
    for name in $(compgen -e); do
        if [[ $name == AZ_BATCHAI_* && " $roots " != *" $name "* ]]; then names+=("$name"); fi
    done
    for name in ${BATCHAI_EXPAND_VARS:-}; do
        if [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then names+=("$name"); fi
    done
    for name in "${names[@]}"; do
        if [[ ${!name} == *'$'* ]]; then
            expand_value "${!name}"
            export "$name=$REPLY"
        fi
    done
}

# ---- tasks ----------------------------------------------------------------------------------------
PRIMARY_PIDS=()
BACKGROUND_PIDS=()
declare -A TASK_NAMES=() # pid -> stdout file name, for the log

# start_logged STDOUT_PATH STDERR_PATH COMMAND [NAME=VALUE ...]: run COMMAND with bash -c in the
# background, appending its stdout/stderr to the files and copying them to the container's own
# stdout/stderr (kubectl logs). Sets STARTED_PID; its exit status is COMMAND's.
# Each task gets its own process group (set -m) so it can be stopped with all its children.
start_logged() {
    local out=$1 err=$2 cmd=$3
    shift 3
    set -m
    (
        trap 'exit 143' TERM
        for kv in "$@"; do export "$kv"; done
        { { bash -c "$cmd" </dev/null 3>&- | tee -a "$out"; exit "${PIPESTATUS[0]}"; } 2>&1 1>&3 |
            tee -a "$err" 1>&2; exit "${PIPESTATUS[0]}"; } 3>&1
    ) &
    STARTED_PID=$!
    set +m
}

# run_task ROLE STDOUT_FILE STDERR_FILE [NAME=VALUE ...] -- COMMAND   (called from tasks-<index>.sh)
# ROLE primary: the node's exit code comes from these. ROLE background: stopped when the primaries end.
run_task() {
    local role=$1 out=$2 err=$3
    shift 3
    local -a env=()
    while [[ $# -gt 0 && $1 != -- ]]; do
        env+=("$1")
        shift
    done
    [[ $# -eq 2 ]] || fail "run_task $out: expected '-- COMMAND' after the variables"
    local cmd=$2
    case $role in
        primary | background) ;;
        *) fail "run_task $out: unknown role '$role'" ;;
    esac
    start_logged "$AZ_BATCHAI_STDOUTERR_DIR/$out" "$AZ_BATCHAI_STDOUTERR_DIR/$err" "$cmd" "${env[@]}"
    TASK_NAMES[$STARTED_PID]=$out
    if [[ $role == primary ]]; then PRIMARY_PIDS+=("$STARTED_PID"); else BACKGROUND_PIDS+=("$STARTED_PID"); fi
    log "started $role task $out (pid $STARTED_PID): $cmd"
}

# stop_tasks PID...: TERM each task's process group, give it up to 10 s, then KILL what is left.
stop_tasks() {
    local pid i
    for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null; done
    for pid in "$@"; do
        for ((i = 0; i < 20; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}

on_signal() {
    trap - TERM INT
    log "received SIG$1: stopping tasks"
    stop_tasks "${PRIMARY_PIDS[@]}" "${BACKGROUND_PIDS[@]}"
    exit $((128 + $2))
}

# wait_tasks PID...: wait for all; sets RC to the first non-zero exit code in the order given.
wait_tasks() {
    local pid code
    RC=0
    for pid in "$@"; do
        wait "$pid"
        code=$?
        log "task ${TASK_NAMES[$pid]} exited with code $code"
        if [[ $RC -eq 0 && $code -ne 0 ]]; then RC=$code; fi
    done
}

# ---- multi-node SSH (mpirun from node 0 reaches the others over ssh) -------------------------------
setup_ssh_client() {
    local dir=$SSH_HOME
    [[ -r $BATCHAI_SSH_DIR/ssh-privatekey && -r $BATCHAI_SSH_DIR/ssh-publickey ]] ||
        fail "ssh-privatekey and ssh-publickey not found in BATCHAI_SSH_DIR=$BATCHAI_SSH_DIR"
    mkdir -p "$dir" && chmod 700 "$dir" || fail "cannot create $dir"
    # Secret volumes are often mode 0644; ssh refuses private keys readable by others.
    cp "$BATCHAI_SSH_DIR/ssh-privatekey" "$dir/batchai_id" && chmod 600 "$dir/batchai_id" &&
        cp "$BATCHAI_SSH_DIR/ssh-publickey" "$dir/batchai_id.pub" &&
        cat "$BATCHAI_SSH_DIR/ssh-publickey" >>"$dir/authorized_keys" && chmod 600 "$dir/authorized_keys" ||
        fail "cannot install the job's SSH key in $dir"
    # Ours goes first (ssh uses the first value it finds); an existing config is kept after it.
    local config
    config="Host *
    Port $SSH_PORT
    IdentityFile $dir/batchai_id
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
"
    if [[ -f $dir/config ]]; then config+=$(<"$dir/config"); fi
    printf '%s\n' "$config" >"$dir/config" && chmod 600 "$dir/config" || fail "cannot write $dir/config"
}

# Workers: serve ssh for mpirun on node 0 until the Job ends this pod. Does not return.
exec_sshd() {
    local dir=$SSH_HOME sshd
    sshd=$(command -v sshd || true)
    [[ -n $sshd ]] || sshd=/usr/sbin/sshd
    [[ -x $sshd ]] || fail "sshd not found on PATH or at /usr/sbin/sshd (install openssh-server in the image)"
    if [[ ! -f $dir/batchai_host_key ]]; then
        if command -v ssh-keygen >/dev/null; then
            ssh-keygen -q -t ed25519 -N '' -f "$dir/batchai_host_key" || fail "ssh-keygen failed"
        else
            # Any private key works as a host key; clients do not check host keys (see ssh config).
            cp "$dir/batchai_id" "$dir/batchai_host_key" || fail "cannot create an sshd host key"
        fi
    fi
    # mpirun's remote ranks start from an ssh session, which does not see the pod's environment:
    # pass it through ~/.ssh/environment (PermitUserEnvironment).
    local name
    : >"$dir/environment" && chmod 600 "$dir/environment" || fail "cannot write $dir/environment"
    for name in $(compgen -e); do
        case $name in _ | SHLVL | PWD | OLDPWD) continue ;; esac
        [[ ${!name} == *$'\n'* ]] || printf '%s=%s\n' "$name" "${!name}" >>"$dir/environment"
    done
    cat >"$dir/batchai_sshd_config" <<EOF || fail "cannot write $dir/batchai_sshd_config"
Port $SSH_PORT
HostKey $dir/batchai_host_key
PidFile $dir/batchai_sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin yes
PasswordAuthentication no
PubkeyAuthentication yes
PermitUserEnvironment yes
StrictModes no
UsePAM no
UseDNS no
EOF
    mkdir -p "${BATCHAI_SSHD_RUN_DIR:-/run/sshd}" 2>/dev/null
    log "worker node: starting $sshd on port $SSH_PORT"
    exec "$sshd" -D -e -f "$dir/batchai_sshd_config"
}

tcp_open() {
    if command -v timeout >/dev/null; then
        timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
    else
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
    fi
}

# Node 0 starts only when every other node accepts connections on the ssh port.
wait_for_workers() {
    local timeout=${BATCHAI_WAIT_TIMEOUT:-900} deadline i
    [[ $timeout =~ ^[0-9]+$ ]] || fail "BATCHAI_WAIT_TIMEOUT must be a number of seconds, got '$timeout'"
    deadline=$((SECONDS + timeout))
    for ((i = 1; i < NODE_COUNT; i++)); do
        log "waiting for sshd on ${HOSTS[$i]}:$SSH_PORT (node $i)"
        until tcp_open "${HOSTS[$i]}" "$SSH_PORT"; do
            if ((SECONDS >= deadline)); then
                fail "timed out after ${timeout}s waiting for sshd on ${HOSTS[$i]}:$SSH_PORT (node $i of $NODE_COUNT)"
            fi
            sleep 0.5
        done
    done
    log "all $NODE_COUNT nodes reachable"
}

# Batch AI mounted unmanagedFileSystems by running mountCommand with the mount path appended.
run_unmanaged_mounts() {
    local cmd path code
    while IFS=$'\t' read -r cmd path; do
        [[ -n $cmd ]] || continue
        log "mounting $path: $cmd"
        mkdir -p -- "$path" || fail "cannot create mount point $path"
        bash -c "$cmd $(printf '%q' "$path")" </dev/null
        code=$?
        if ((code != 0)); then finish "$code" "MountFailed: $path: exit code $code"; fi
    done <<<"${BATCHAI_UNMANAGED_MOUNTS:-}"
}

# ---- main -----------------------------------------------------------------------------------------
main() {
    trap 'on_signal TERM 15' TERM
    trap 'on_signal INT 2' INT

    NODE_INDEX=${BATCHAI_NODE_INDEX:-${JOB_COMPLETION_INDEX:-0}}
    [[ $NODE_INDEX =~ ^[0-9]+$ ]] || fail "node index must be a number, got '$NODE_INDEX'"
    HOSTS=()
    if [[ -n ${BATCHAI_HOSTS:-} ]]; then IFS=, read -r -a HOSTS <<<"$BATCHAI_HOSTS"; fi
    NODE_COUNT=${BATCHAI_NODE_COUNT:-${#HOSTS[@]}}
    if [[ $NODE_COUNT == 0 ]]; then NODE_COUNT=1; fi
    [[ $NODE_COUNT =~ ^[1-9][0-9]*$ ]] || fail "node count must be a positive number, got '$NODE_COUNT'"
    ((NODE_INDEX < NODE_COUNT)) || fail "node index $NODE_INDEX is not below the node count $NODE_COUNT"
    NODE_ID=${BATCHAI_NODE_ID:-${HOSTNAME:-$(hostname 2>/dev/null)}}
    NODE_ID=${NODE_ID:-node-$NODE_INDEX}
    CONFIG_DIR=${BATCHAI_CONFIG_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
    SSH_PORT=${BATCHAI_SSH_PORT:-22}
    SSH_HOME=${HOME:-/root}/.ssh

    expand_environment
    : "${AZ_BATCHAI_MPI_HOST_FILE:=$CONFIG_DIR/hostfile}"
    export AZ_BATCHAI_MPI_HOST_FILE

    run_unmanaged_mounts

    [[ -n ${AZ_BATCHAI_STDOUTERR_DIR:-} ]] || fail "AZ_BATCHAI_STDOUTERR_DIR is not set"
    mkdir -p -- "$AZ_BATCHAI_STDOUTERR_DIR" || fail "cannot create $AZ_BATCHAI_STDOUTERR_DIR"
    # Per-node file names on multi-node jobs, as Batch AI: execution-<nodeId>.log, stdout-job_prep-<nodeId>.txt.
    local suffix=""
    if ((NODE_COUNT > 1)); then suffix=-$NODE_ID; fi
    EXEC_LOG=$AZ_BATCHAI_STDOUTERR_DIR/execution$suffix.log
    log "node $NODE_INDEX of $NODE_COUNT ($NODE_ID) starting; stdouterr: $AZ_BATCHAI_STDOUTERR_DIR"

    # The job temp folders (Caffe2 and PyTorch rendezvous files go there) and every output directory.
    local name
    local -a dirs=(AZ_BATCHAI_JOB_TEMP AZ_BATCHAI_SHARED_JOB_TEMP)
    for name in $(compgen -e); do
        if [[ $name == AZ_BATCHAI_OUTPUT_* ]]; then dirs+=("$name"); fi
    done
    for name in "${dirs[@]}"; do
        if [[ -n ${!name:-} ]]; then mkdir -p -- "${!name}" || fail "cannot create $name=${!name}"; fi
    done

    if [[ -n ${BATCHAI_JOB_PREPARATION:-} ]]; then
        log "job preparation: $BATCHAI_JOB_PREPARATION"
        start_logged "$AZ_BATCHAI_STDOUTERR_DIR/stdout-job_prep$suffix.txt" \
            "$AZ_BATCHAI_STDOUTERR_DIR/stderr-job_prep$suffix.txt" "$BATCHAI_JOB_PREPARATION"
        PRIMARY_PIDS=("$STARTED_PID") # so that a SIGTERM stops it
        TASK_NAMES[$STARTED_PID]=stdout-job_prep$suffix.txt
        wait_tasks "$STARTED_PID"
        PRIMARY_PIDS=()
        if ((RC != 0)); then finish "$RC" "JobPreparationFailed: exit code $RC"; fi
    fi

    if [[ -n ${BATCHAI_SSH_DIR:-} ]] && ((NODE_COUNT > 1)); then
        ((${#HOSTS[@]} == NODE_COUNT)) || fail "BATCHAI_HOSTS lists ${#HOSTS[@]} hosts for $NODE_COUNT nodes"
        # Open MPI shortens host names to their first label (job-1.job -> job-1), which the pods' DNS
        # cannot resolve: keep them whole (Open MPI 4 and 5), unless the job says otherwise.
        export OMPI_MCA_orte_keep_fqdn_hostnames=${OMPI_MCA_orte_keep_fqdn_hostnames:-1}
        export PRTE_MCA_prte_keep_fqdn_hostnames=${PRTE_MCA_prte_keep_fqdn_hostnames:-1}
        setup_ssh_client
        if ((NODE_INDEX > 0)); then exec_sshd; fi
        wait_for_workers
    fi

    local tasks=$CONFIG_DIR/tasks-$NODE_INDEX.sh
    [[ -r $tasks ]] || fail "tasks file $tasks not found"
    # shellcheck source=/dev/null
    source "$tasks"

    if ((${#PRIMARY_PIDS[@]} > 0)); then
        wait_tasks "${PRIMARY_PIDS[@]}"
        if ((${#BACKGROUND_PIDS[@]} > 0)); then
            log "primary tasks done: stopping background tasks"
            stop_tasks "${BACKGROUND_PIDS[@]}"
        fi
    else
        # Nodes with only background tasks (TensorFlow parameter servers) run until they exit or the
        # Job ends the pod.
        wait_tasks "${BACKGROUND_PIDS[@]}"
    fi
    if ((RC != 0)); then finish "$RC" "JobFailed: exit code $RC"; fi
    log "node $NODE_INDEX done: exit code 0"
    exit 0
}

main "$@"
