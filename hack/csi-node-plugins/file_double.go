package main

// DOUBLE of the Azure Files CSI driver's node service (kubernetes-sigs/azurefile-csi-driver), for inline
// volumes: this kernel has no SMB client, so instead of mount.cifs it bind-mounts a local directory,
// <shares-root>/<account>/<share>, the tree the Azure Files REST double (tests/doubles/azure_files.py)
// serves, so that what a job writes on the share is what `kubectl batchai job file list` lists. As the real
// driver it reads the Secret named by `secretName` from the pod's namespace (azurestorageaccountname,
// azurestorageaccountkey) and takes `shareName`, `server` and comma-separated cifs `mountOptions`; as Azure
// it refuses a wrong key (mount error(13)), an unknown account (its host does not resolve) and a missing
// share (mount error(2)), in the real driver's error format, so the kubelet's FailedMount Events carry them.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const fileHelpLink = "\nPlease refer to http://aka.ms/filemounterror for possible causes and solutions for mount errors."

type fileDouble struct {
	root     string
	accounts map[string]string // account -> its key
	secrets  *secretReader
}

func newFileDouble(root string, accounts map[string]string, secrets *secretReader) *fileDouble {
	return &fileDouble{root: root, accounts: accounts, secrets: secrets}
}

// cifsFailure is the real driver's message for a failed mount.cifs (k8s.io/mount-utils' error text, the
// key masked as mount-utils masks sensitive options).
func cifsFailure(volumeID, source, target, options, output string) error {
	err := fmt.Sprintf("mount failed: exit status 32\nMounting command: mount\nMounting arguments: -t cifs -o %s,<masked> %s %s\n"+
		"Output: %s\nRefer to the mount.cifs(8) manual page (e.g. man mount.cifs) and kernel log messages (dmesg)\n",
		options, source, target, output)
	return status.Errorf(codes.Internal, "volume(%s) mount %s on %s failed with %s%s", volumeID, source, target, err, fileHelpLink)
}

func (f *fileDouble) publish(ctx context.Context, req *csi.NodePublishVolumeRequest) error {
	attrs, target, volumeID := req.GetVolumeContext(), req.GetTargetPath(), req.GetVolumeId()
	if mounted, err := isMountPoint(target); err != nil {
		return status.Errorf(codes.Internal, "Could not mount target %q: %v", target, err)
	} else if mounted {
		return nil
	}
	share := attr(attrs, "shareName")
	if share == "" {
		return status.Errorf(codes.InvalidArgument, "failed to get file share from volume attributes(%v)", attrs)
	}
	secretName := attr(attrs, "secretName")
	if secretName == "" {
		return status.Error(codes.InvalidArgument, "secretName is required for an inline volume of the dev cluster's double")
	}
	secret, err := f.secrets.get(ctx, attr(attrs, podNamespaceKey), secretName)
	if err != nil {
		return status.Errorf(codes.Internal, "GetAccountInfo(%s) failed with error: could not get secret(%s): %v", volumeID, secretName, err)
	}
	account := secretValue(secret, "azurestorageaccountname")
	key := secretValue(secret, "azurestorageaccountkey")
	server := attr(attrs, "server")
	if server == "" {
		server = account + ".file.core.windows.net"
	}
	source := "//" + server + "/" + share
	options := "mfsymlinks,actimeo=30,nosharesock"
	if o := attr(attrs, "mountOptions"); o != "" {
		options = o
	}
	want, known := f.accounts[account]
	switch {
	case !known:
		return cifsFailure(volumeID, source, target, options,
			fmt.Sprintf("mount error: could not resolve address for %s: Unknown error", server))
	case key != want:
		return cifsFailure(volumeID, source, target, options, "mount error(13): Permission denied")
	}
	dir := filepath.Join(f.root, account, share)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || strings.Contains(share, "/") {
		return cifsFailure(volumeID, source, target, options, "mount error(2): No such file or directory")
	}
	if err := os.MkdirAll(target, 0o777); err != nil {
		return status.Errorf(codes.Internal, "Could not mount target %q: %v", target, err)
	}
	if err := syscall.Mount(dir, target, "", syscall.MS_BIND, ""); err != nil {
		return status.Errorf(codes.Internal, "bind mount %s on %s: %v", dir, target, err)
	}
	if req.GetReadonly() || readOnlyCapability(req.GetVolumeCapability()) {
		if err := syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			_ = syscall.Unmount(target, 0)
			return status.Errorf(codes.Internal, "read-only remount of %s: %v", target, err)
		}
	}
	return nil
}

func (f *fileDouble) unpublish(_ context.Context, _ string, target string) error {
	if mounted, err := isMountPoint(target); err != nil {
		return err
	} else if mounted {
		if err := syscall.Unmount(target, 0); err != nil {
			if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
