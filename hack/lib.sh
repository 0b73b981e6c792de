# shellcheck shell=bash
# What hack/'s scripts share (each sources this file first): the pinned versions (versions.env), where
# each piece is cached (toolchain-dirs.sh: BATCHAI_CACHE_DIR and the bin dirs), log lines tagged with the
# script's LOG_TAG ("[build-toolchain] ..."), and the build steps: every long step says what it builds and
# about how long a cold build takes, says every 50 s that it is still at it, and says how long it took,
# so that nothing is silent for more than a minute.
HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Go's own install directory (GOROOT, default /usr/local/go) when go is not on PATH: sudo's secure_path
# leaves it out.
if ! command -v go >/dev/null && [ -x "${GOROOT:-/usr/local/go}/bin/go" ]; then PATH=$PATH:${GOROOT:-/usr/local/go}/bin; fi
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"
# shellcheck source=toolchain-dirs.sh
source "$HACK_DIR/toolchain-dirs.sh"
# The prefix of the CPython that the cntk-cpu image copies in (hack/images; CNTK 2.7 has wheels for 3.5-3.7
# only): pyenv's $CNTK_PYTHON_VERSION of this machine unless given.
CNTK_PYTHON=${CNTK_PYTHON:-$HOME/.pyenv/versions/$CNTK_PYTHON_VERSION}

log() { echo "[${LOG_TAG:-hack}] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# duration SECONDS: "42 s", "3 min", "3 min 5 s".
duration() {
  if [ "$1" -lt 60 ]; then echo "$1 s"
  elif [ $(( $1 % 60 )) = 0 ]; then echo "$(( $1 / 60 )) min"
  else echo "$(( $1 / 60 )) min $(( $1 % 60 )) s"; fi
}

# run_step WHAT COLD CMD...: run CMD (in a subshell, with errexit), saying WHAT it builds, that a cold
# build takes about COLD, every 50 s that it is still running, and how long it took. STEP_DOING and
# STEP_DONE replace "building" and "built" (installing, installed). Call it as a plain command, never in
# an if condition or an || or && list: bash switches errexit off there, inside CMD too.
run_step() {
  local what=$1 cold=$2; shift 2
  local doing=${STEP_DOING:-building} done=${STEP_DONE:-built} t0=$SECONDS ticker rc
  log "$what: $doing (cold: about $cold on 2 cores)"
  # The ticker: its sleep holds no pipe of the caller's (so `$(...)` around us does not wait for it), and it
  # stops when we stop, even when we are killed.
  (
    unlock  # nor any lock: its sleep would hold it for up to a minute after we are done
    parent=$$ start=$SECONDS
    while sleep "${BATCHAI_PROGRESS_EVERY:-50}" >/dev/null 2>&1; do
      kill -0 "$parent" 2>/dev/null || exit 0
      log "$what: still $doing ($(duration $(( SECONDS - start ))) so far)"
    done
  ) >/dev/null &
  ticker=$!
  # Not `CMD || rc=$?`: errexit would be off inside CMD, and a failed command in it would go unnoticed.
  set +e
  ( set -e; "$@" )
  rc=$?
  set -e
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  if [ "$rc" != 0 ]; then log "$what: FAILED after $(duration $(( SECONDS - t0 )))"; return "$rc"; fi
  log "$what: $done in $(duration $(( SECONDS - t0 )))"
}

# build_step WHAT COLD FUNCTION OUTPUT...: run_step FUNCTION unless every OUTPUT is already there.
build_step() {
  local what=$1 cold=$2 fn=$3 out missing=0; shift 3
  for out in "$@"; do [ -e "$out" ] || missing=1; done
  if [ $missing = 0 ]; then return 0; fi
  run_step "$what" "$cold" "$fn"
}

# tools_module DIR EDIT...: a throwaway Go module in DIR (in the cache) shaped by `go mod edit EDIT...`
# (-require=MODULE@VERSION, -tool=PACKAGE, -replace=...), then tidied, so that its tools build against
# the pinned module's own requirements. Leaves the caller in DIR.
tools_module() {
  local dir=$1; shift
  mkdir -p "$dir"
  cd "$dir"
  [ -f go.mod ] || go mod init "batchai-operator.invalid/tools/$(basename "$dir")" >&2
  go mod edit "$@"
  go mod tidy >&2
}

# lock FILE: hold FILE's lock until this process ends or calls unlock (one build at a time per cache:
# parallel checkouts share it), saying so when another build holds it. Every process this one starts
# inherits the lock; start daemons only after unlock.
LOCK_FDS=()
lock() {
  local file=$1 fd
  mkdir -p "$(dirname "$file")"
  exec {fd}>"$file"
  LOCK_FDS+=("$fd")
  if ! flock -n "$fd"; then
    log "waiting for another build, which holds $file"
    flock "$fd"
  fi
}

# unlock: release every lock this process holds.
unlock() {
  local fd
  for fd in "${LOCK_FDS[@]}"; do exec {fd}>&-; done
  LOCK_FDS=()
}
