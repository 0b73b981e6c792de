// batchai-csi-node: the CSI node plugins of the dev cluster's real nodes, one process per (node, driver).
//
//	--driver blob.csi.azure.com  A STAND-IN for the upstream Azure Blob CSI driver (kubernetes-sigs/blob-csi-driver),
//	                             which the Go module proxy does not serve. It follows that driver's node contract
//	                             (inline volumes, attributes, Secret, default blobfuse2 flags, error texts; see
//	                             blob_standin.go) and mounts the container with a real FUSE file system: rclone's
//	                             azureblob backend against Azurite, in place of blobfuse2.
//	--driver file.csi.azure.com  A DOUBLE of the Azure Files CSI driver: this kernel has no SMB client, so it
//	                             bind-mounts <shares-root>/<account>/<share>, the directory tree the Azure Files
//	                             REST double (tests/doubles/azure_files.py) serves, and refuses a wrong key.
//
// Each registers with one kubelet through <kubelet-dir>/plugins_registry (the plugin-registration API) and
// serves CSI's Identity and Node services on <kubelet-dir>/plugins/<driver>/csi.sock, as upstream's node
// DaemonSets do. It runs as a host process, so its mounts are made in the machine's mount namespace before
// containerd bind-mounts the volume into the container.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type accountsFlag map[string]string

func (a accountsFlag) String() string { return "" }

func (a accountsFlag) Set(v string) error {
	name, key, ok := strings.Cut(v, ":")
	if !ok || name == "" || key == "" {
		return errUsage("--account wants NAME:KEY")
	}
	a[name] = key
	return nil
}

type errUsage string

func (e errUsage) Error() string { return string(e) }

func main() {
	driver := flag.String("driver", "", "blob.csi.azure.com (stand-in) or file.csi.azure.com (double)")
	nodeID := flag.String("node-id", "", "the node's name (NodeGetInfo)")
	kubeletDir := flag.String("kubelet-dir", "", "the kubelet's --root-dir")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig to read the pods' Secrets with, as the upstream drivers do")
	stateDir := flag.String("state-dir", "", "blob: rclone's caches, logs and control sockets, one directory per volume")
	rclone := flag.String("rclone", "rclone", "blob: the rclone binary")
	sharesRoot := flag.String("shares-root", "", "file: the shares, <root>/<account>/<share>")
	accounts := accountsFlag{}
	flag.Var(accounts, "account", "file: NAME:KEY of a storage account whose shares are served (repeatable)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if *nodeID == "" || *kubeletDir == "" || *kubeconfig == "" {
		log.Fatal("--node-id, --kubelet-dir and --kubeconfig are required")
	}
	secrets, err := newSecretReader(*kubeconfig)
	if err != nil {
		log.Fatal(err)
	}

	var node nodeService
	switch *driver {
	case blobDriver:
		if *stateDir == "" {
			log.Fatal("--state-dir is required for " + blobDriver)
		}
		log.SetPrefix("[blob.csi.azure.com stand-in] ")
		node = newBlobStandIn(*stateDir, *rclone, secrets)
	case fileDriver:
		if *sharesRoot == "" {
			log.Fatal("--shares-root is required for " + fileDriver)
		}
		log.SetPrefix("[file.csi.azure.com double] ")
		node = newFileDouble(*sharesRoot, accounts, secrets)
	default:
		log.Fatalf("--driver must be %s or %s", blobDriver, fileDriver)
	}

	stop, err := serve(*driver, *nodeID, *kubeletDir, node)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	// Mounts outlive the plugin (as blobfuse2 mounts outlive upstream's driver with its blobfuse-proxy):
	// the kubelet unpublishes them through the next instance, or `hack/devcluster down` unmounts them.
	stop()
}
