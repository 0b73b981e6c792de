#!/bin/sh
# Test double of the Docker CLI, for tests/integration/test_kind_validation.py only: answers the three questions kind
# asks before it validates its config (is Docker there, its cgroup setup, existing clusters) and refuses
# everything after, so `kind create cluster` runs kind's own config loading and validation and then stops
# at pulling the node image. There is no container runtime on this machine.
case "$1" in
  -v) echo "Docker version 27.0.0, build fake-docker-double" ;;
  info) echo '{"CgroupVersion":"2","CgroupDriver":"systemd","MemoryLimit":true,"PidsLimit":true,"CPUShares":true,"SecurityOptions":[]}' ;;
  ps) ;;
  *) echo "fake docker double: no container runtime here (docker $1)" >&2; exit 1 ;;
esac
