#!/usr/bin/env bash
# Check, in the first seconds, everything a make target needs from this machine (hack/prereqs.txt), before
# any long build. Missing Debian packages are installed (as root, with apt-get); for anything else, and
# for packages when it cannot install them (not root, no apt-get), it stops with the exact command to run.
# The Makefile runs it first in every target that builds or runs something, and .ci/run runs it for `ci`.
#
#   hack/install-prereqs.sh [--check] [--quiet] TARGET...
#     TARGET  a make target: unit lint integration e2e demo quickstart devcluster test bench chaos, or ci
#             (.ci/run) or images (hack/images)
#     --check report only, install nothing
#     --quiet say nothing when everything is there
#
# BATCHAI_PREREQS (a file like hack/prereqs.txt) replaces the list, for the tests of this script.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
LOG_TAG=prereqs
LIST=${BATCHAI_PREREQS:-$HACK_DIR/prereqs.txt}
PYTHON=${PYTHON:-python3}
CACHE=$BATCHAI_CACHE_DIR

# The groups of hack/prereqs.txt each make target needs. Real nodes (group nodes, and Azurite for their
# blob mounts) are optional for the dev cluster and the integration tier: BATCHAI_REAL_NODES=0 leaves them out.
real_nodes() { if [ "${BATCHAI_REAL_NODES:-2}" != 0 ]; then echo nodes azurite; fi; }
groups_of() {
  case $1 in
    unit) echo python ;;
    lint) echo python lint go ;;
    devcluster) echo go build cluster "$(real_nodes)" ;;
    images) echo build nodes ;;
    integration | bench | chaos) echo python go build cluster azurite "$(real_nodes)" ;;
    e2e) echo python go build cluster nodes ssh azurite ;;
    demo | quickstart) echo python go build cluster nodes azurite ;;
    test | ci) echo python lint go build cluster nodes ssh azurite ;;
    *) die "unknown target '$1' (known: unit lint devcluster images integration bench chaos e2e demo quickstart test ci)" ;;
  esac
}

# version_ge A B: whether version A (1.26.8, 3.11) is at least B.
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }

GO_ARCH=$(uname -m); GO_ARCH=${GO_ARCH/x86_64/amd64}; GO_ARCH=${GO_ARCH/aarch64/arm64}
FOUND=()    # what was found, for the summary line

# expand PATH: PATH with a leading ~ and each $NAME or ${NAME} (versions.env's, the environment's) expanded.
expand() {
  local s=$1 name
  s=${s/#\~/$HOME}
  while [[ $s =~ \$\{?([A-Za-z_][A-Za-z0-9_]*)\}? ]]; do
    name=${BASH_REMATCH[1]}
    s=${s//"${BASH_REMATCH[0]}"/${!name-}}
  done
  printf '%s' "$s"
}

# check CHECK: whether the prerequisite is there; sets REASON to what is wrong when it is not.
check() {
  local c=$1 v want
  REASON=
  case $c in
    cmd:*)
      # Executable (command -v also names a file that is not), also in the sbin directories, which are
      # on root's PATH only: what needs root runs as root.
      v=$(PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin command -v "${c#cmd:}" 2>/dev/null) && [ -x "$v" ] ||
        REASON="no ${c#cmd:} on PATH" ;;
    file:*) v=$(expand "${c#file:}"); [ -e "$v" ] || REASON="no $v" ;;
    dpkg:*) dpkg-query -W -f='${Status}' "${c#dpkg:}" 2>/dev/null | grep -q 'ok installed' ||
              REASON="Debian package ${c#dpkg:} not installed" ;;
    python-module:*)
      # shellcheck disable=SC2086  # one module name per word
      v=$(printf 'import %s\n' ${c#python-module:})
      "$PYTHON" -c "$v" >/dev/null 2>&1 || REASON="$PYTHON cannot import ${c#python-module:}" ;;
    python\>=*)
      want=${c#python>=}
      if ! v=$("$PYTHON" -c 'import platform; print(platform.python_version())' 2>/dev/null); then
        REASON="no $PYTHON"
      elif version_ge "$v" "$want"; then FOUND+=("python $v")
      else REASON="$PYTHON is $v, older than $want"; fi ;;
    go\>=go.mod)
      want=$(sed -n 's/^go //p' "$HACK_DIR/go.mod")
      # In hack/ (the module): with GOTOOLCHAIN=auto, go switches to the toolchain go.mod asks for.
      if ! command -v go >/dev/null 2>&1; then REASON="no go on PATH or in ${GOROOT:-/usr/local/go}/bin"
      elif ! v=$(cd "$HACK_DIR" && go env GOVERSION 2>&1); then REASON=$(echo "$v" | head -n1)
      elif version_ge "${v#go}" "$want"; then FOUND+=("${v/go/go }")
      else REASON="go is ${v#go}, older than $want (hack/go.mod)"; fi ;;
    node\>=*)
      want=${c#node>=}
      if ! v=$(node --version 2>/dev/null); then REASON="no node on PATH"
      elif version_ge "${v#v}" "$want"; then FOUND+=("node ${v#v}")
      else REASON="node is ${v#v}, older than $want"; fi ;;
    root) if [ "$(id -u)" = 0 ]; then FOUND+=(root); else REASON="not root"; fi ;;
    disk\>=*)
      # COLD/WARM: GB for a cold build; once the control plane is built, only WARM.
      want=${c#disk>=}
      if [ -x "$CONTROL_PLANE_BIN/kube-apiserver" ]; then want=${want#*/}; else want=${want%/*}; fi
      v=$CACHE; while [ ! -d "$v" ]; do v=$(dirname "$v"); done
      v=$(( $(df -Pk "$v" | awk 'NR == 2 {print $4}') / 1024 / 1024 ))
      if [ "$v" -ge "$want" ]; then FOUND+=("$v GB free for the cache")
      else REASON="$v GB free where the build cache goes ($CACHE), $want GB needed"; fi ;;
    *) die "$LIST: unknown check '$c'" ;;
  esac
  [ -z "$REASON" ]
}

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

# The list's lines for GROUPS..., field by field: CHECKS, PACKAGES, WHYS, FIXES (FIX keeps its own "|").
CHECKS=() PACKAGES=() WHYS=() FIXES=()
load() {
  local group check pkg why fix
  while IFS='|' read -r group check pkg why fix; do
    group=$(trim "$group")
    [[ -z $group || $group == \#* ]] && continue
    [[ -n $(trim "$check") && -n $(trim "$pkg") ]] || die "$LIST: a line without its fields: $group"
    [[ " $* " == *" $group "* ]] || continue
    CHECKS+=("$(trim "$check")") PACKAGES+=("$(trim "$pkg")") WHYS+=("$(trim "$why")") FIXES+=("$(trim "$fix")")
  done <"$LIST"
  [ ${#CHECKS[@]} -gt 0 ] || die "$LIST has nothing for $*"
}

# fill FIX TARGET: FIX with its placeholders filled in (hack/prereqs.txt).
fill() {
  local fix=$1 sudo="" command
  [ "$(id -u)" = 0 ] || sudo="sudo "
  case $2 in
    ci) command=.ci/run ;;
    images) command="hack/images build" ;;
    *) command="make $2" ;;
  esac
  fix=${fix//\$GO_VERSION/$GO_VERSION}; fix=${fix//\$GO_ARCH/$GO_ARCH}
  fix=${fix//\$CNTK_PYTHON_VERSION/$CNTK_PYTHON_VERSION}; fix=${fix//\$PYTHON/$PYTHON}
  fix=${fix//\$\{SUDO\}/$sudo}; fix=${fix//\$COMMAND/$command}
  echo "$fix"
}

main() {
  local install=1 quiet=0 targets=() target groups=() problem
  while [ $# -gt 0 ]; do
    case $1 in
      --check) install=0 ;;
      --quiet) quiet=1 ;;
      *) targets+=("$1") ;;
    esac
    shift
  done
  [ ${#targets[@]} -gt 0 ] || die "usage: $0 [--check] [--quiet] TARGET..."
  for target in "${targets[@]}"; do
    # shellcheck disable=SC2207  # group names are single words
    groups+=($(groups_of "$target"))
  done
  load "${groups[@]}"
  local missing_pkgs=() problems=() i fix
  for i in "${!CHECKS[@]}"; do
    check "${CHECKS[$i]}" && continue
    if [ "${PACKAGES[$i]}" != - ]; then
      [[ " ${missing_pkgs[*]} " == *" ${PACKAGES[$i]} "* ]] || missing_pkgs+=("${PACKAGES[$i]}")
    else
      problems+=("$REASON (${WHYS[$i]}). Run: $(fill "${FIXES[$i]}" "${targets[0]}")")
    fi
  done

  if [ ${#missing_pkgs[@]} -gt 0 ]; then
    local apt="apt-get install -y --no-install-recommends ${missing_pkgs[*]}"
    if [ $install = 1 ] && [ ${#problems[@]} = 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      STEP_DOING=installing STEP_DONE=installed run_step "Debian packages ${missing_pkgs[*]}" "1 min" apt_install "${missing_pkgs[@]}"
      # Installed: check again (a package that does not provide what the list says is a bug of the list).
      missing_pkgs=() FOUND=()
      for i in "${!CHECKS[@]}"; do
        check "${CHECKS[$i]}" || problems+=("$REASON, after installing ${PACKAGES[$i]} (${WHYS[$i]}): fix $LIST")
      done
    elif ! command -v apt-get >/dev/null; then
      problems+=("missing Debian packages ${missing_pkgs[*]} (no apt-get here: install their equivalents)")
    elif [ "$(id -u)" != 0 ]; then
      problems+=("missing Debian packages ${missing_pkgs[*]}. Run: sudo $apt")
    else
      problems+=("missing Debian packages ${missing_pkgs[*]}. Run: $apt")
    fi
  fi

  if [ ${#problems[@]} -gt 0 ]; then
    log "${targets[*]} needs what this machine lacks:"
    for problem in "${problems[@]}"; do log "  - $problem"; done
    exit 1
  fi
  [ $quiet = 0 ] || return 0
  local found=""
  if [ ${#FOUND[@]} -gt 0 ]; then found=$(printf '%s, ' "${FOUND[@]}"); found=" (${found%, })"; fi
  log "${targets[*]}: all ${#CHECKS[@]} prerequisites present$found"
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq update
  apt-get -qq install -y --no-install-recommends "$@" >/dev/null
}

main "$@"
