#!/usr/bin/env bash
# batchai launcher: runs in every pod of a TrainingJob (pod = Batch AI node, index = node index).
#
# Steps: expand $VARS in AZ_BATCHAI_* values -> unmanaged mounts -> create the stdouterr, job temp and
# output directories -> write the MPI hostfile -> run jobPreparation -> detect the image's MPI again and
# rewrite the hostfile -> (multi-node) install the job's ssh key and run sshd on every node; a node with
# nothing to run only serves ssh, node 0 of an mpirun-style job waits for the others' sshd -> run this
# node's tasks from tasks-<index>.sh -> exit with the code that decides the node.
#
# Command lines (jobPreparation, tasks) run in an interactive, non-login bash that reads ~/.bashrc, as
# Batch AI's did (see user_shell).
#
# Reads only environment variables (the full contract is in batchai_operator/launcher/commands.py):
#   BATCHAI_CONFIG_DIR       folder with tasks-<index>.sh and hostfile (default: this script's folder)
#   BATCHAI_TASKS            this node's tasks file itself, instead of CONFIG_DIR/tasks-<index>.sh (single-node
#                            jobs carry it in the pod, and share one ConfigMap for the launcher's files)
#   BATCHAI_HOSTFILE         the hostfile itself, instead of CONFIG_DIR/hostfile (with BATCHAI_TASKS)
#   BATCHAI_NODE_INDEX       node index (default JOB_COMPLETION_INDEX, else 0)
#   BATCHAI_NODE_COUNT       number of nodes (default: number of BATCHAI_HOSTS, else 1)
#   BATCHAI_NODE_ID          node id used in per-node file names (default $HOSTNAME)
#   BATCHAI_HOSTS            comma-separated DNS names of all nodes, index order (multi-node)
#   BATCHAI_JOB_PREPARATION  jobPreparation command line (optional)
#   BATCHAI_SSH_DIR          folder with ssh-privatekey and ssh-publickey (every multi-node job)
#   BATCHAI_SSH_PORT         sshd port (default 22)
#   BATCHAI_SSHD_RUN_DIR     sshd privilege separation folder (default /run/sshd)
#   BATCHAI_WAIT_TIMEOUT     seconds node 0 waits for the other nodes' sshd (default 900)
#   BATCHAI_TERMINATION_LOG  termination message file (default /dev/termination-log, if writable)
#   BATCHAI_EXPAND_VARS      extra variable names whose $VARS are expanded like AZ_BATCHAI_* ones
#   BATCHAI_UNMANAGED_MOUNTS unmanagedFileSystems, one "<mountCommand><TAB><path>" per line; each runs
#                            as "<mountCommand> <path>" (Batch AI appended the path), needs privileges
#   BATCHAI_MPI_FLAVOUR      openmpi, intelmpi or mpich: the MPI batchai_mpirun uses (default: detected)
#   BATCHAI_TASK_SHELL       interactive (default: bash -i, reads ~/.bashrc) or plain (bash -c)
#   AZ_BATCHAI_MPI_HOST_FILE where the hostfile goes; unset or the ConfigMap's read-only copy means
#                            $AZ_BATCHAI_JOB_TEMP/hostfile (Batch AI's place for it)
#
# Termination message (first line) and exit code:
#   JobPreparationFailed: exit code N   jobPreparation failed; the launcher exits with N
#   MountFailed: <path>: exit code N    an unmanaged mount command failed; the launcher exits with N
#   LauncherFailed: <reason>            the launcher itself failed (bad config, mkdir, wait timeout); exit 1
#   JobFailed: exit code N              a primary task failed; the launcher exits with N
# Exit codes pass through unchanged; a process killed by signal S gives 128+S.
#
# Written for bash >= 4.3 (old toolkit images): no wait -n -p, no ${var@Q}, no EPOCHSECONDS.
#
# shellcheck disable=SC2317  # functions called from tasks-<index>.sh, traps and the user shells (export -f)
# shellcheck disable=SC2015  # "A && B || fail ...": fail when either step fails, which is what is meant

LAUNCHER_ERROR=1

# Shared with the setup task's script: write_termination_message, expand_value, run_unmanaged_mounts.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit "$LAUNCHER_ERROR"

log() {
    local line
    line="[batchai $(date -u +%Y-%m-%dT%H:%M:%SZ) node ${NODE_INDEX:-?}] $*"
    printf '%s\n' "$line" >&2
    if [[ -n ${EXEC_LOG:-} ]]; then printf '%s\n' "$line" >>"$EXEC_LOG" 2>/dev/null; fi
}

# finish CODE MESSAGE: record why the node ended and exit with CODE.
finish() {
    log "$2"
    write_termination_message "$2"
    stop_sshd
    exit "$1"
}

fail() {
    finish "$LAUNCHER_ERROR" "LauncherFailed: $*"
}

# ---- $VAR expansion (expand_value is in lib.sh) -----------------------------------------------------
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

# ---- the shell that runs user command lines -------------------------------------------------------
# Batch AI ran job command lines in a shell that had read ~/.bashrc: the InfiniBand recipes' jobPreparation
# appends `source .../mpivars.sh` to ~/.bashrc and the toolkit then finds Intel MPI's mpirun, and the CNTK
# images' ~/.bashrc activates CNTK (its banner opens the stdout.txt of Batch AI's CNTK jobs). Ubuntu's
# ~/.bashrc returns at once unless the shell is interactive, so an interactive, non-login bash reads it
# (through user-shell.bashrc, which first restores stderr: bash's complaints about having no terminal go
# to /dev/null, errors of ~/.bashrc do not), then execs a plain `bash -c COMMAND` with the environment
# ~/.bashrc exported. So the command itself runs as in a non-interactive shell (no "exit" or job
# notices on stderr). A login shell is not used: /etc/profile resets PATH on Debian images.
# BATCHAI_TASK_SHELL=plain skips ~/.bashrc.

# user_shell COMMAND: replace the calling (sub)shell with the user shell running COMMAND.
user_shell() {
    local rc=$CONFIG_DIR/user-shell.bashrc
    if [[ ${BATCHAI_TASK_SHELL:-interactive} == plain || ! -r $rc ]]; then
        exec bash -c "$1"
    fi
    exec bash --rcfile "$rc" -i -c 'exec bash -c "$1"' batchai-task "$1" 4>&2 2>/dev/null
}

# ---- MPI: which mpirun the image has, its hostfile and its flags ------------------------------------
# detect_mpi_flavour: sets and exports BATCHAI_MPI_FLAVOUR from the mpirun the user shell finds (after
# ~/.bashrc), unless the job set it. No mpirun, or an unknown one: Open MPI (the recipes' mpi-default-bin).
detect_mpi_flavour() {
    local flavour=${BATCHAI_JOB_MPI_FLAVOUR:-} version
    if [[ -z $flavour ]]; then
        version=$( (user_shell 'command -v mpirun >/dev/null && mpirun --version') </dev/null 2>&1)
        case $version in
            *"Intel(R) MPI"*) flavour=intelmpi ;;
            *HYDRA* | *MPICH* | *MVAPICH*) flavour=mpich ;;
            *) flavour=openmpi ;;
        esac
    fi
    case $flavour in
        openmpi | intelmpi | mpich) ;;
        *) fail "BATCHAI_MPI_FLAVOUR must be openmpi, intelmpi or mpich, not '$flavour'" ;;
    esac
    export BATCHAI_MPI_FLAVOUR=$flavour
}

# write_hostfile: the ConfigMap's Open MPI hostfile ("<host> slots=<n>" lines) in the detected MPI's
# format at $AZ_BATCHAI_MPI_HOST_FILE: as it is for Open MPI, "<host>:<n>" for hydra (Intel MPI, MPICH).
write_hostfile() {
    local template=$TASKS_DIR/hostfile target host slots text=""
    [[ -r $template ]] || return 0
    target=${AZ_BATCHAI_MPI_HOST_FILE:-}
    if [[ -z $target || $target == "$template" ]]; then
        if [[ -z ${AZ_BATCHAI_JOB_TEMP:-} ]]; then
            export AZ_BATCHAI_MPI_HOST_FILE=$template # nowhere to write: the ConfigMap's copy as it is
            return 0
        fi
        target=$AZ_BATCHAI_JOB_TEMP/hostfile
    fi
    while read -r host slots; do
        [[ -n $host ]] || continue
        slots=${slots#slots=}
        if [[ $BATCHAI_MPI_FLAVOUR == openmpi ]]; then text+="$host slots=$slots"$'\n'; else text+="$host:$slots"$'\n'; fi
    done <"$template"
    mkdir -p -- "$(dirname -- "$target")" && printf '%s' "$text" >"$target" ||
        fail "cannot write the MPI hostfile $target"
    export AZ_BATCHAI_MPI_HOST_FILE=$target
}

# prepare_mpi: detect the MPI and (re)write the hostfile for it.
prepare_mpi() {
    detect_mpi_flavour
    write_hostfile
    log "MPI: $BATCHAI_MPI_FLAVOUR, hostfile $AZ_BATCHAI_MPI_HOST_FILE"
}

# batchai_mpirun NP PROGRAM [ARGS...]: run PROGRAM with NP ranks over the job's nodes, with the flags of
# the detected MPI. Exported to the user shells: the MPI toolkits' command lines call it.
batchai_mpirun() {
    local np=$1
    shift
    case ${BATCHAI_MPI_FLAVOUR:-openmpi} in
        openmpi) mpirun --allow-run-as-root --hostfile "$AZ_BATCHAI_MPI_HOST_FILE" -np "$np" "$@" ;;
        *) mpirun -machinefile "$AZ_BATCHAI_MPI_HOST_FILE" -n "$np" "$@" ;;
    esac
}
export -f batchai_mpirun

# ---- tasks ----------------------------------------------------------------------------------------
PRIMARY_PIDS=()
BACKGROUND_PIDS=()
declare -A TASK_NAMES=() # pid -> stdout file name, for the log

# start_logged STDOUT_PATH STDERR_PATH COMMAND [NAME=VALUE ...]: run COMMAND in the user shell in the
# background, appending its stdout/stderr to the files and copying them to the container's own
# stdout/stderr (kubectl logs). Sets STARTED_PID; its exit status is COMMAND's.
# Each task gets its own process group (set -m) so it can be stopped with all its children.
start_logged() {
    local out=$1 err=$2 cmd=$3
    shift 3
    set -m
    (
        trap 'exit 143' TERM
        # shellcheck disable=SC2163  # each kv is NAME=VALUE
        for kv in "$@"; do export "$kv"; done
        { { (user_shell "$cmd") </dev/null 3>&- | tee -a "$out"; exit "${PIPESTATUS[0]}"; } 2>&1 1>&3 |
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
    # jobs -p too: a task started just before the signal may not be in PRIMARY_PIDS yet (run_task adds it
    # after start_logged returns), and it must not outlive the launcher.
    # shellcheck disable=SC2046  # one word per pid
    stop_tasks "${PRIMARY_PIDS[@]}" "${BACKGROUND_PIDS[@]}" ${SSHD_PID:+"$SSHD_PID"} $(jobs -p)
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

# ---- multi-node SSH: every node runs sshd with the job's key, as Batch AI set up on every node ------
SSHD_PID=""

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
    # The job's key is every worker's host key too (exec_sshd), so node 0 checks host keys strictly
    # against it: only a holder of the job's Secret can pose as a worker.
    local key_type key _
    read -r key_type key _ <"$BATCHAI_SSH_DIR/ssh-publickey"
    printf '* %s %s\n' "$key_type" "$key" >"$dir/batchai_known_hosts" ||
        fail "cannot write $dir/batchai_known_hosts"
    # Ours goes first (ssh uses the first value it finds); an existing config is kept after it.
    local config
    config="Host *
    Port $SSH_PORT
    IdentityFile $dir/batchai_id
    StrictHostKeyChecking yes
    UserKnownHostsFile $dir/batchai_known_hosts
    CheckHostIP no
    PasswordAuthentication no
    LogLevel ERROR
"
    if [[ -f $dir/config ]]; then config+=$(<"$dir/config"); fi
    printf '%s\n' "$config" >"$dir/config" && chmod 600 "$dir/config" || fail "cannot write $dir/config"
}

# sshd_command: sets SSHD_CMD to sshd with the job's config (host key, authorized key, environment);
# returns 1 when the image has no sshd.
sshd_command() {
    local dir=$SSH_HOME sshd
    sshd=$(command -v sshd || true)
    [[ -n $sshd ]] || sshd=/usr/sbin/sshd
    [[ -x $sshd ]] || return 1
    # The job's key is the host key: node 0 pins it (setup_ssh_client's known_hosts).
    cp "$dir/batchai_id" "$dir/batchai_host_key" && chmod 600 "$dir/batchai_host_key" ||
        fail "cannot create an sshd host key"
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
PermitRootLogin prohibit-password
PasswordAuthentication no
PermitEmptyPasswords no
ChallengeResponseAuthentication no
PubkeyAuthentication yes
PermitUserEnvironment yes
StrictModes no
UsePAM no
UseDNS no
EOF
    mkdir -p "${BATCHAI_SSHD_RUN_DIR:-/run/sshd}" 2>/dev/null
    SSHD_CMD=("$sshd" -D -e -f "$dir/batchai_sshd_config")
}

# Nodes that run tasks serve ssh in the background. Images without sshd (TensorFlow, PyTorch and Caffe2
# images rarely have one) still run their tasks: only ssh to this node is unavailable.
start_sshd() {
    if ! sshd_command; then
        log "warning: no sshd in the image (install openssh-server): other nodes cannot ssh to this node"
        return 0
    fi
    set -m # its own process group, so stop_tasks can stop it
    "${SSHD_CMD[@]}" </dev/null &
    SSHD_PID=$!
    set +m
    log "sshd on port $SSH_PORT (pid $SSHD_PID)"
}

stop_sshd() {
    if [[ -n ${SSHD_PID:-} ]]; then
        stop_tasks "$SSHD_PID"
        SSHD_PID=""
    fi
}

# serve_ssh (tasks-file directive of a node with nothing to run): serve ssh for node 0's mpirun until the
# Job ends this pod; sshd replaces the launcher. Does not return.
serve_ssh() {
    [[ -n ${BATCHAI_SSH_DIR:-} ]] || fail "serve_ssh: the job has no SSH key (BATCHAI_SSH_DIR is not set)"
    sshd_command || fail "sshd not found on PATH or at /usr/sbin/sshd (install openssh-server in the image)"
    log "node $NODE_INDEX: serving ssh on port $SSH_PORT"
    exec "${SSHD_CMD[@]}"
}

tcp_open() {
    if command -v timeout >/dev/null; then
        # shellcheck disable=SC2016  # expanded by the inner bash
        timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
    else
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
    fi
}

# wait_for_nodes (tasks-file directive of node 0 of an mpirun-style job): go on only when every other node
# accepts connections on the ssh port, that is, when its jobPreparation has finished.
wait_for_nodes() {
    [[ -n ${BATCHAI_SSH_DIR:-} ]] || fail "wait_for_nodes: the job has no SSH key (BATCHAI_SSH_DIR is not set)"
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

# has_directive FILE WORD: whether a line of FILE is exactly WORD.
has_directive() {
    local line
    while IFS= read -r line; do
        if [[ $line == "$2" ]]; then return 0; fi
    done <"$1"
    return 1
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
    # A BATCHAI_MPI_FLAVOUR the job sets (environmentVariables) wins over detection.
    BATCHAI_JOB_MPI_FLAVOUR=${BATCHAI_MPI_FLAVOUR:-}

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
    # This node's tasks and the hostfile: from the ConfigMap, or carried in the pod's environment.
    TASKS_DIR=$CONFIG_DIR
    if [[ -n ${BATCHAI_TASKS+x} ]]; then
        TASKS_DIR=${AZ_BATCHAI_JOB_TEMP:-/tmp}/.batchai
        mkdir -p -- "$TASKS_DIR" && printf '%s\n' "$BATCHAI_TASKS" >"$TASKS_DIR/tasks-$NODE_INDEX.sh" &&
            printf '%s' "${BATCHAI_HOSTFILE:-}" >"$TASKS_DIR/hostfile" || fail "cannot write $TASKS_DIR"
    fi
    # The hostfile exists before jobPreparation, as Batch AI's did; the MPI it is written for is detected
    # again once jobPreparation has run, as that is where recipes install Intel MPI.
    prepare_mpi

    if [[ -n ${BATCHAI_JOB_PREPARATION:-} ]]; then
        log "job preparation: $BATCHAI_JOB_PREPARATION"
        start_logged "$AZ_BATCHAI_STDOUTERR_DIR/stdout-job_prep$suffix.txt" \
            "$AZ_BATCHAI_STDOUTERR_DIR/stderr-job_prep$suffix.txt" "$BATCHAI_JOB_PREPARATION"
        PRIMARY_PIDS=("$STARTED_PID") # so that a SIGTERM stops it
        TASK_NAMES[$STARTED_PID]=stdout-job_prep$suffix.txt
        wait_tasks "$STARTED_PID"
        PRIMARY_PIDS=()
        if ((RC != 0)); then finish "$RC" "JobPreparationFailed: exit code $RC"; fi
        prepare_mpi
    fi

    local tasks=$TASKS_DIR/tasks-$NODE_INDEX.sh
    [[ -r $tasks ]] || fail "tasks file $tasks not found"

    if [[ -n ${BATCHAI_SSH_DIR:-} ]] && ((NODE_COUNT > 1)); then
        ((${#HOSTS[@]} == NODE_COUNT)) || fail "BATCHAI_HOSTS lists ${#HOSTS[@]} hosts for $NODE_COUNT nodes"
        # Open MPI shortens host names to their first label (job-1.job -> job-1), which the pods' DNS
        # cannot resolve: keep them whole (Open MPI 4 and 5), unless the job says otherwise.
        export OMPI_MCA_orte_keep_fqdn_hostnames=${OMPI_MCA_orte_keep_fqdn_hostnames:-1}
        export PRTE_MCA_prte_keep_fqdn_hostnames=${PRTE_MCA_prte_keep_fqdn_hostnames:-1}
        setup_ssh_client
        # A node that only serves ssh (serve_ssh in its tasks file) runs sshd in the foreground instead.
        if ! has_directive "$tasks" serve_ssh; then start_sshd; fi
    fi
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
    stop_sshd
    log "node $NODE_INDEX done: exit code 0"
    exit 0
}

main "$@"
