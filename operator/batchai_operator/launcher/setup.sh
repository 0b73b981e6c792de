# shellcheck shell=bash
# batchai setup task: runs as the init container of a BatchAICluster's setup DaemonSet, on every node,
# as Batch AI ran nodeSetup.setupTask (docs/migration.md, "cluster.json"). lib.sh is prepended to this file.
#
# Reads only environment variables: AZ_BATCHAI_MOUNT_ROOT, AZ_BATCHAI_STDOUTERR_DIR ($NAME and ${NAME}
# expanded like the job launcher does, no command substitution), BATCHAI_NODE_NAME,
# BATCHAI_UNMANAGED_MOUNTS (the cluster's unmanaged file systems, mounted first, as Batch AI did),
# BATCHAI_SETUP_TASK_COMMAND_LINE (run with `bash -c`). stdout and stderr go to stdout-<node>.txt and
# stderr-<node>.txt in the stdouterr folder and to the container's own streams (kubectl logs). The exit
# code is the command's; the termination message says why the task failed.
set -u

log() { printf '[batchai setup %s] %s\n' "$NODE" "$*" >&2; }

finish() {
    log "$2"
    write_termination_message "$2"
    exit "$1"
}

NODE=${BATCHAI_NODE_NAME:-$(hostname)}
expand_value "${AZ_BATCHAI_MOUNT_ROOT:-}"
export AZ_BATCHAI_MOUNT_ROOT=$REPLY
expand_value "${AZ_BATCHAI_STDOUTERR_DIR:-}"
export AZ_BATCHAI_STDOUTERR_DIR=$REPLY
mkdir -p -- "$AZ_BATCHAI_STDOUTERR_DIR" || finish 1 "SetupTaskFailed: cannot create $AZ_BATCHAI_STDOUTERR_DIR"
run_unmanaged_mounts
out=$AZ_BATCHAI_STDOUTERR_DIR/stdout-$NODE.txt
err=$AZ_BATCHAI_STDOUTERR_DIR/stderr-$NODE.txt
: >"$out"
: >"$err"
cmd=$BATCHAI_SETUP_TASK_COMMAND_LINE
({ bash -c "$cmd" </dev/null 3>&- | tee -a "$out"; exit "${PIPESTATUS[0]}"; } 2>&1 1>&3 |
    tee -a "$err" 1>&2; exit "${PIPESTATUS[0]}") 3>&1
code=$?
if ((code != 0)); then finish "$code" "SetupTaskFailed: exit code $code"; fi
exit 0
