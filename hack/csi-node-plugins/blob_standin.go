package main

// STAND-IN for the upstream Azure Blob CSI driver's node service (kubernetes-sigs/blob-csi-driver v1.26.4,
// NodePublishVolume of an inline volume, which stages it in place). Point by point (tests/k8s/README.md, "Real mounts"):
//   - the Secret named by `secretName` is read from the pod's namespace through the API (keys
//     azurestorageaccountname, azurestorageaccountkey or azurestorageaccountsastoken); for inline volumes the
//     account comes from the Secret only;
//   - attributes are read case-insensitively: containerName, protocol, server, storageEndpointSuffix,
//     mountOptions (comma-separated), secretName, clientID;
//   - protocol fuse2 runs "blobfuse2"; empty or fuse runs blobfuse v1, which is not installed (upstream's
//     image has no blobfuse v1 either), and fails as upstream does;
//   - the blobfuse2 command line is built as upstream builds it (upstreamArgs) and read as blobfuse2 reads it
//     (parseBlobfuse2); blobfuse2's pipeline start (key decoding) and --pre-mount-validate (one listing of the
//     container) fail with blobfuse2's texts, wrapped in upstream's "Mount failed with error: ..." message.
// Then rclone mounts the container (FUSE, azureblob backend) in place of blobfuse2. Not reproduced:
// --cancel-list-on-mount-seconds (rclone has no such delay: listings work at once whatever the value),
// blobfuse2's block cache and streaming modes, NFS (protocol nfs), workload identity.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const blobHelpLink = "\nPlease refer to http://aka.ms/blobmounterror for possible causes and solutions for mount errors."

type blobStandIn struct {
	stateDir string
	rclone   string
	secrets  *secretReader
	mu       sync.Mutex
	mounts   map[string]chan struct{} // target -> closed when its rclone has exited
}

func newBlobStandIn(stateDir, rclone string, secrets *secretReader) *blobStandIn {
	return &blobStandIn{stateDir: stateDir, rclone: rclone, secrets: secrets, mounts: map[string]chan struct{}{}}
}

// volumeDir holds one volume's rclone cache, log and control socket (short: unix socket paths are limited).
func (b *blobStandIn) volumeDir(volumeID string) string {
	sum := sha256.Sum256([]byte(volumeID))
	return filepath.Join(b.stateDir, hex.EncodeToString(sum[:8]))
}

// mountFailed is upstream's error for a failed blobfuse run: the exit error and the program's output.
func mountFailed(exitErr, output string) error {
	return status.Errorf(codes.Internal, "Mount failed with error: %s, output: %s%s", exitErr, output, blobHelpLink)
}

func (b *blobStandIn) publish(ctx context.Context, req *csi.NodePublishVolumeRequest) error {
	attrs := req.GetVolumeContext()
	target := req.GetTargetPath()
	if mounted, err := isMountPoint(target); err != nil {
		return status.Errorf(codes.Internal, "Could not mount target %q: %v", target, err)
	} else if mounted {
		return nil
	}
	if attr(attrs, "clientID") != "" {
		return status.Error(codes.Internal, "workload identity (clientID) is not supported by the dev cluster's stand-in of blob.csi.azure.com")
	}
	secretName := attr(attrs, "secretName")
	if secretName == "" {
		return status.Error(codes.Internal, "no secretName in the volume attributes: the stand-in reads the account key from a Secret")
	}
	secret, err := b.secrets.get(ctx, attr(attrs, podNamespaceKey), secretName)
	if err != nil {
		return status.Errorf(codes.Internal, "could not get account key from secret(%s): %v", secretName, err)
	}
	account := secretValue(secret, "azurestorageaccountname")
	key := secretValue(secret, "azurestorageaccountkey")
	sas := secretValue(secret, "azurestorageaccountsastoken")
	containerName := attr(attrs, "containerName")
	if containerName == "" {
		return status.Errorf(codes.Internal, "could not find containerName from attributes(%v) or volumeID(%v)", attrs, req.GetVolumeId())
	}
	switch strings.ToLower(attr(attrs, "protocol")) {
	case "fuse2":
	case "nfs", "aznfs", "nfsv3":
		return status.Error(codes.Internal, "NFS mounts of blob containers are not served by the dev cluster's stand-in of blob.csi.azure.com")
	default: // "", "fuse": upstream runs blobfuse v1
		return mountFailed(`exec: "blobfuse": executable file not found in $PATH`, "")
	}
	if err := os.MkdirAll(target, 0o777); err != nil {
		return status.Errorf(codes.Internal, "Could not mount target %q: %v", target, err)
	}
	dir := b.volumeDir(req.GetVolumeId())
	readOnly := req.GetReadonly() || readOnlyCapability(req.GetVolumeCapability())
	cfg, err := parseBlobfuse2(upstreamArgs(target, attr(attrs, "mountOptions"), readOnly, filepath.Join(dir, "cache"), containerName))
	if err != nil {
		return mountFailed("exit status 1", "Error: "+err.Error()+"\n")
	}
	endpoint := blobEndpoint(attr(attrs, "server"), account, attr(attrs, "storageEndpointSuffix"), cfg.useHTTPS)
	client, err := containerClient(endpoint, account, key, sas, containerName)
	if err != nil {
		return mountFailed("exit status 1", fmt.Sprintf("Error: failed to initialize new pipeline [%v]\n", err))
	}
	if cfg.preMountValidate {
		if err := testPipeline(ctx, client); err != nil {
			return mountFailed("exit status 1", fmt.Sprintf(
				"Error: failed to initialize new pipeline [failed to authenticate azstorage credentials with error [%v]]\n", err))
		}
	}
	if err := os.MkdirAll(cfg.tmpPath, 0o700); err != nil {
		return status.Errorf(codes.Internal, "%v", err)
	}
	return b.mount(cfg, dir, endpoint, account, key, sas)
}

func readOnlyCapability(c *csi.VolumeCapability) bool {
	mode := c.GetAccessMode().GetMode()
	return mode == csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY ||
		mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
}

// containerClient authenticates as blobfuse2 does: an account key (decoded here: a key that is not base64
// fails now) or a SAS token. A few quick retries: the kubelet retries the whole mount anyway.
func containerClient(endpoint, account, key, sas, name string) (*container.Client, error) {
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{
		MaxRetries: 2, TryTimeout: 10 * time.Second, RetryDelay: time.Second, MaxRetryDelay: 2 * time.Second,
	}}}
	url := endpoint + "/" + name
	if key == "" && sas != "" {
		return container.NewClientWithNoCredential(url+"?"+strings.TrimPrefix(sas, "?"), opts)
	}
	cred, err := container.NewSharedKeyCredential(account, key)
	if err != nil {
		return nil, err
	}
	return container.NewClientWithSharedKeyCredential(url, cred, opts)
}

// testPipeline is blobfuse2's --pre-mount-validate: list the container once; a refusal is reported by its
// error code (AuthorizationFailure for a wrong key, ContainerNotFound, ...).
func testPipeline(ctx context.Context, client *container.Client) error {
	n := int32(2)
	_, err := client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{MaxResults: &n}).NextPage(ctx)
	var respErr *azcore.ResponseError
	if errors.As(err, &respErr) {
		return fmt.Errorf("BlockBlob::TestPipeline : [%s]", respErr.ErrorCode)
	}
	return err
}

// mount runs rclone in the foreground of its own session (it outlives this plugin, as blobfuse2 outlives
// upstream's driver) and waits until the FUSE mount is there. Credentials reach it through its environment.
func (b *blobStandIn) mount(cfg mountConfig, dir, endpoint, account, key, sas string) error {
	logFile := filepath.Join(dir, "rclone.log")
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return status.Errorf(codes.Internal, "%v", err)
	}
	defer out.Close()
	cmd := exec.Command(b.rclone, rcloneArgs(cfg, filepath.Join(dir, "rc.sock"), logFile)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "RCLONE_CONFIG=/dev/null",
		"RCLONE_AZUREBLOB_ACCOUNT=" + account, "RCLONE_AZUREBLOB_ENDPOINT=" + endpoint}
	if key != "" {
		cmd.Env = append(cmd.Env, "RCLONE_AZUREBLOB_KEY="+key)
	} else {
		cmd.Env = append(cmd.Env, "RCLONE_AZUREBLOB_SAS_URL="+endpoint+"/"+cfg.container+"?"+strings.TrimPrefix(sas, "?"))
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return mountFailed(err.Error(), "")
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { // reap it when it ends (unmounted, or failed to mount)
		exited <- cmd.Wait()
		close(done)
	}()
	deadline := time.After(30 * time.Second)
	for {
		if ok, _ := isMountPoint(cfg.target); ok {
			b.mu.Lock()
			b.mounts[cfg.target] = done
			b.mu.Unlock()
			return nil
		}
		select {
		case err := <-exited:
			return mountFailed(fmt.Sprint(err), tail(logFile, 10))
		case <-deadline:
			_ = cmd.Process.Kill()
			return mountFailed("timed out waiting for the mount", tail(logFile, 10))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *blobStandIn) unpublish(ctx context.Context, volumeID, target string) error {
	dir := b.volumeDir(volumeID)
	mounted, err := isMountPoint(target)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if mounted {
		// What the job wrote and closed is uploaded after close: wait for it, as blobfuse2 uploads on close.
		if err := waitUploads(ctx, filepath.Join(dir, "rc.sock"), 2*time.Minute); err != nil {
			log.Printf("%s: uploads not confirmed before unmount: %v", target, err)
		}
		if out, err := exec.Command("fusermount3", "-u", target).CombinedOutput(); err != nil {
			log.Printf("fusermount3 -u %s: %v: %s; unmounting lazily", target, err, out)
			if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil {
				return err
			}
		}
		// rclone exits once unmounted (a mount made before a restart of this plugin has no entry here).
		b.mu.Lock()
		done := b.mounts[target]
		delete(b.mounts, target)
		b.mu.Unlock()
		if done != nil {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				log.Printf("%s: rclone still running 10 s after the unmount", target)
			}
		}
	}
	if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.RemoveAll(dir)
}

// waitUploads asks rclone (its remote control, vfs/stats) until no upload is queued or in progress.
func waitUploads(ctx context.Context, socket string, timeout time.Duration) error {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://rclone/vfs/stats", nil)
		resp, err := client.Do(req)
		if err == nil {
			var stats struct {
				DiskCache struct {
					UploadsInProgress int `json:"uploadsInProgress"`
					UploadsQueued     int `json:"uploadsQueued"`
				} `json:"diskCache"`
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err = json.Unmarshal(body, &stats); err == nil &&
				stats.DiskCache.UploadsInProgress+stats.DiskCache.UploadsQueued == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("uploads still pending")
			}
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// isMountPoint: whether path is a mount point in this mount namespace (/proc/self/mountinfo).
func isMountPoint(path string) (bool, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && unescapeMountPath(fields[4]) == abs {
			return true, nil
		}
	}
	return false, s.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMountPath(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+3 < len(p) {
			var c byte
			if _, err := fmt.Sscanf(p[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
