package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	reg "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"batchai-operator.invalid/hack/pluginreg"
)

const (
	blobDriver = "blob.csi.azure.com"
	fileDriver = "file.csi.azure.com"
	version    = "batchai-dev"

	// Volume context keys the kubelet adds (CSIDriver podInfoOnMount: true, inline volumes).
	ephemeralKey    = "csi.storage.k8s.io/ephemeral"
	podNamespaceKey = "csi.storage.k8s.io/pod.namespace"
)

// nodeService is what a driver implements; server.go does the rest of CSI.
type nodeService interface {
	publish(ctx context.Context, req *csi.NodePublishVolumeRequest) error
	unpublish(ctx context.Context, volumeID, target string) error
}

type identity struct {
	csi.UnimplementedIdentityServer
	name string
}

func (i *identity) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: i.name, VendorVersion: version}, nil
}

func (i *identity) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil // node only: no controller service
}

func (i *identity) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

type node struct {
	csi.UnimplementedNodeServer
	id      string
	service nodeService
}

func (n *node) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: n.id}, nil
}

// No STAGE_UNSTAGE_VOLUME: the kubelet calls NodePublishVolume alone, as it does for the upstream drivers'
// inline volumes (they stage inside publish).
func (n *node) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

func (n *node) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "Volume ID missing in request")
	}
	if req.GetTargetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "Target path not provided")
	}
	if req.GetVolumeCapability() == nil {
		return nil, status.Error(codes.InvalidArgument, "Volume capability missing in request")
	}
	if !strings.EqualFold(attr(req.GetVolumeContext(), ephemeralKey), "true") {
		// The operator builds inline volumes only; persistent volumes would need NodeStageVolume.
		return nil, status.Error(codes.InvalidArgument, "the dev cluster's plugin serves inline (ephemeral) volumes only")
	}
	if err := n.service.publish(ctx, req); err != nil {
		log.Printf("NodePublishVolume %s on %s: %v", req.GetVolumeId(), req.GetTargetPath(), err)
		return nil, err
	}
	log.Printf("NodePublishVolume %s on %s: mounted", req.GetVolumeId(), req.GetTargetPath())
	return &csi.NodePublishVolumeResponse{}, nil
}

func (n *node) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "Volume ID missing in request")
	}
	if req.GetTargetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "Target path missing in request")
	}
	if err := n.service.unpublish(ctx, req.GetVolumeId(), req.GetTargetPath()); err != nil {
		log.Printf("NodeUnpublishVolume %s on %s: %v", req.GetVolumeId(), req.GetTargetPath(), err)
		return nil, status.Errorf(codes.Internal, "failed to unmount target %q: %v", req.GetTargetPath(), err)
	}
	log.Printf("NodeUnpublishVolume %s on %s: unmounted", req.GetVolumeId(), req.GetTargetPath())
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// serve starts the CSI socket, then registers the plugin with the kubelet (which connects to the CSI
// socket as soon as it has registered it). It returns a function that stops both.
func serve(driver, nodeID, kubeletDir string, service nodeService) (func(), error) {
	csiSocket := filepath.Join(kubeletDir, "plugins", driver, "csi.sock")
	regSocket := filepath.Join(kubeletDir, "plugins_registry", driver+"-reg.sock")
	csiServer := grpc.NewServer()
	csi.RegisterIdentityServer(csiServer, &identity{name: driver})
	csi.RegisterNodeServer(csiServer, &node{id: nodeID, service: service})
	cl, err := pluginreg.Listen(csiSocket)
	if err != nil {
		return nil, err
	}
	go pluginreg.Run(csiServer, cl)

	stopRegistration, err := pluginreg.Serve(regSocket, &reg.PluginInfo{
		Type:              reg.CSIPlugin,
		Name:              driver,
		Endpoint:          csiSocket,
		SupportedVersions: []string{"1.0.0"},
	})
	if err != nil {
		return nil, err
	}
	log.Printf("serving %s for node %s on %s (registration socket %s)", driver, nodeID, csiSocket, regSocket)
	return func() {
		stopRegistration()
		csiServer.Stop()
		_ = os.Remove(csiSocket)
	}, nil
}

// attr reads a volume attribute; the upstream drivers compare keys case-insensitively.
func attr(m map[string]string, key string) string {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// secretReader reads the Secret an inline volume names from the pod's namespace through the API, as the
// upstream drivers do with their own ServiceAccount.
type secretReader struct{ client kubernetes.Interface }

func newSecretReader(kubeconfig string) (*secretReader, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &secretReader{client: client}, nil
}

func (s *secretReader) get(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return s.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func secretValue(secret *corev1.Secret, key string) string {
	return strings.TrimSpace(string(secret.Data[key]))
}
