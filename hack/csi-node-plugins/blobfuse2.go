package main

// Pure functions of the blob stand-in: the blobfuse2 command line the upstream driver builds for an inline
// volume, how blobfuse2 reads it, and the rclone mount that stands in for it. Unit tests: blobfuse2_test.go.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// upstreamArgs is the blobfuse2 argument list the upstream driver (v1.26.4, NodeStageVolume) runs for an
// inline volume: the comma-separated mountOptions attribute, "-o ro" when read-only, then each default flag
// that no option starts with; all joined with spaces, duplicate spaces trimmed, and split again on spaces
// (so an option value cannot hold a space). Upstream's tmp path is /mnt/<volumeID>; ours is tmpPath.
func upstreamArgs(target, mountOptions string, readOnly bool, tmpPath, container string) []string {
	options := strings.Split(mountOptions, ",")
	if readOnly {
		options = append(options, "-o ro")
	}
	defaults := [][2]string{
		{"--pre-mount-validate", "true"},
		{"--use-https", "true"},
		{"--tmp-path", tmpPath},
		{"--container-name", container},
		{"--cancel-list-on-mount-seconds", "10"},
		{"--empty-dir-check", "false"},
		{"--disable-version-check", "true"},
	}
	for _, d := range defaults {
		given := false
		for _, o := range options {
			if strings.HasPrefix(o, d[0]) {
				given = true
			}
		}
		if !given {
			options = append(options, d[0]+"="+d[1])
		}
	}
	return strings.Fields("mount " + target + " " + strings.Join(options, " "))
}

type flagKind int

const (
	boolFlag flagKind = iota
	intFlag
	stringFlag
)

// blobfuse2Flags are the `blobfuse2 mount` flags the upstream driver adds and those of Batch AI's
// blobfuse options that blobfuse2 still takes (the operator's allowlist, api/common.py); anything else is
// refused as blobfuse2's command line parser refuses an unknown flag.
var blobfuse2Flags = map[string]flagKind{
	"pre-mount-validate":            boolFlag,
	"use-https":                     boolFlag,
	"tmp-path":                      stringFlag,
	"container-name":                stringFlag,
	"cancel-list-on-mount-seconds":  intFlag,
	"empty-dir-check":               boolFlag,
	"disable-version-check":         boolFlag,
	"use-attr-cache":                boolFlag,
	"use-adls":                      boolFlag,
	"virtual-directory":             boolFlag,
	"disable-writeback-cache":       boolFlag,
	"ignore-open-flags":             boolFlag,
	"read-only":                     boolFlag,
	"file-cache-timeout-in-seconds": intFlag,
	"file-cache-timeout":            intFlag,
	"cache-size-mb":                 intFlag,
	"max-concurrency":               intFlag,
	"block-size-mb":                 intFlag,
	"log-level":                     stringFlag,
}

// fuseOptions are the libfuse options (-o) blobfuse2 takes; those with a value end in "=".
var fuseOptions = []string{
	"allow_other", "allow_root", "ro", "nonempty", "default_permissions", "big_writes", "kernel_cache",
	"direct_io", "attr_timeout=", "entry_timeout=", "negative_timeout=", "max_read=", "max_write=", "uid=",
	"gid=", "umask=", "fsname=",
}

// mountConfig is what blobfuse2 would mount, as far as the stand-in honours it.
type mountConfig struct {
	target            string
	container         string
	tmpPath           string
	preMountValidate  bool
	useHTTPS          bool
	readOnly          bool
	cancelListSeconds int
	fuse              map[string]string // -o options: name -> value ("" for a switch)
}

// parseBlobfuse2 reads a `blobfuse2 mount` argument list; its errors are blobfuse2's (cobra's) texts.
func parseBlobfuse2(argv []string) (mountConfig, error) {
	cfg := mountConfig{useHTTPS: true, fuse: map[string]string{}}
	if len(argv) == 0 || argv[0] != "mount" {
		return cfg, fmt.Errorf("unknown command %q for \"blobfuse2\"", strings.Join(argv, " "))
	}
	for i := 1; i < len(argv); i++ {
		tok := argv[i]
		switch {
		case tok == "-o":
			if i+1 >= len(argv) {
				return cfg, fmt.Errorf("flag needs an argument: 'o' in -o")
			}
			i++
			for _, opt := range strings.Split(argv[i], ",") {
				name, value, _ := strings.Cut(opt, "=")
				if !knownFuseOption(opt) {
					return cfg, fmt.Errorf("invalid FUSE options: %s", opt)
				}
				cfg.fuse[name] = value
			}
		case strings.HasPrefix(tok, "--"):
			name, value, hasValue := strings.Cut(tok[2:], "=")
			kind, ok := blobfuse2Flags[name]
			if !ok {
				return cfg, fmt.Errorf("unknown flag: --%s", name)
			}
			if !hasValue {
				if kind != boolFlag {
					return cfg, fmt.Errorf("flag needs an argument: --%s", name)
				}
				value = "true"
			}
			if err := cfg.set(name, kind, value); err != nil {
				return cfg, err
			}
		case strings.HasPrefix(tok, "-"):
			return cfg, fmt.Errorf("unknown shorthand flag: '%s' in %s", strings.TrimLeft(tok, "-")[:1], tok)
		default:
			if cfg.target != "" {
				return cfg, fmt.Errorf("accepts 1 arg(s), received 2")
			}
			cfg.target = tok
		}
	}
	if cfg.target == "" {
		return cfg, fmt.Errorf("accepts 1 arg(s), received 0")
	}
	if _, ro := cfg.fuse["ro"]; ro {
		cfg.readOnly = true
	}
	return cfg, nil
}

func knownFuseOption(opt string) bool {
	for _, known := range fuseOptions {
		if opt == known || (strings.HasSuffix(known, "=") && strings.HasPrefix(opt, known) && len(opt) > len(known)) {
			return true
		}
	}
	return false
}

func (cfg *mountConfig) set(name string, kind flagKind, value string) error {
	switch kind {
	case boolFlag:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--%s\" flag: %v", value, name, err)
		}
		switch name {
		case "pre-mount-validate":
			cfg.preMountValidate = b
		case "use-https":
			cfg.useHTTPS = b
		case "read-only":
			cfg.readOnly = cfg.readOnly || b
		}
	case intFlag:
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--%s\" flag: %v", value, name, err)
		}
		if name == "cancel-list-on-mount-seconds" {
			cfg.cancelListSeconds = n
		}
	case stringFlag:
		switch name {
		case "container-name":
			cfg.container = value
		case "tmp-path":
			cfg.tmpPath = value
		}
	}
	return nil
}

// blobEndpoint is the account's blob endpoint URL: the `server` attribute used verbatim when it has a
// scheme (Azurite's path-style http://127.0.0.1:PORT/<account>), otherwise https:// (http:// with
// --use-https=false) in front of it; without `server`, <account>.blob.<suffix>.
func blobEndpoint(server, account, suffix string, useHTTPS bool) string {
	if server == "" {
		if suffix == "" {
			suffix = "core.windows.net"
		}
		server = account + ".blob." + suffix
	}
	if strings.Contains(server, "://") {
		return strings.TrimRight(server, "/")
	}
	if useHTTPS {
		return "https://" + server
	}
	return "http://" + server
}

// rcloneArgs is the rclone command line that mounts cfg's container where blobfuse2 would have: the
// azureblob backend (credentials and endpoint come from the environment, never the command line), a write
// cache in the volume's tmp path that uploads a file as soon as it is closed, directory markers with
// hdi_isfolder=true, and the libfuse options rclone has an equivalent of. rcSocket is rclone's remote
// control (the stand-in asks it whether uploads are pending before it unmounts).
func rcloneArgs(cfg mountConfig, rcSocket, logFile string) []string {
	args := []string{
		"mount", ":azureblob:" + cfg.container, cfg.target,
		"--vfs-cache-mode", "writes", "--vfs-write-back", "0s", "--cache-dir", cfg.tmpPath,
		"--azureblob-directory-markers", "--azureblob-no-check-container",
		"--rc", "--rc-addr", "unix://" + rcSocket, "--rc-no-auth",
		"--log-file", logFile, "--log-level", "INFO",
	}
	// blobfuse2 keeps attributes and listings for 120 s by default; attr_timeout stands for both.
	cache := 120 * time.Second
	if v, ok := cfg.fuse["attr_timeout"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			cache = time.Duration(n) * time.Second
			args = append(args, "--attr-timeout", cache.String())
		}
	}
	args = append(args, "--dir-cache-time", cache.String())
	if _, ok := cfg.fuse["allow_other"]; ok {
		args = append(args, "--allow-other")
	}
	if _, ok := cfg.fuse["default_permissions"]; ok {
		args = append(args, "--default-permissions")
	}
	for _, o := range []string{"uid", "gid", "umask"} {
		if v, ok := cfg.fuse[o]; ok {
			args = append(args, "--"+o, v)
		}
	}
	if cfg.readOnly {
		args = append(args, "--read-only")
	}
	return args
}
