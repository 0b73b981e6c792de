// gpu-device-plugin-double stands in for NVIDIA's device plugin on the dev cluster's real nodes, which
// have no GPU. It is a test double: it advertises --count healthy devices of --resource
// (nvidia.com/gpu) to one kubelet, registering through that kubelet's plugin registration directory
// (<kubelet root-dir>/plugins_registry; the legacy /var/lib/kubelet/device-plugins socket is shared by
// every kubelet on a machine, so two nodes on one host cannot use it). Pods that request the resource
// then schedule and start as on an AKS GPU node. Allocate hands out nothing real: it only sets the
// NVIDIA_VISIBLE_DEVICES variable that NVIDIA's plugin would set.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	dp "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	reg "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"batchai-operator.invalid/hack/pluginreg"
)

type plugin struct {
	dp.UnimplementedDevicePluginServer
	devices []*dp.Device
}

func (p *plugin) GetDevicePluginOptions(context.Context, *dp.Empty) (*dp.DevicePluginOptions, error) {
	return &dp.DevicePluginOptions{}, nil
}

// ListAndWatch sends the device list once; the devices never change, so the stream then stays open
// until the kubelet closes it.
func (p *plugin) ListAndWatch(_ *dp.Empty, stream grpc.ServerStreamingServer[dp.ListAndWatchResponse]) error {
	if err := stream.Send(&dp.ListAndWatchResponse{Devices: p.devices}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (p *plugin) Allocate(_ context.Context, req *dp.AllocateRequest) (*dp.AllocateResponse, error) {
	resp := &dp.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &dp.ContainerAllocateResponse{
			Envs: map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(c.DevicesIds, ",")},
		})
	}
	return resp, nil
}

func (p *plugin) PreStartContainer(context.Context, *dp.PreStartContainerRequest) (*dp.PreStartContainerResponse, error) {
	return &dp.PreStartContainerResponse{}, nil
}

func main() {
	registry := flag.String("registry-dir", "", "the kubelet's plugins_registry directory (<root-dir>/plugins_registry)")
	socket := flag.String("socket", "", "path of this plugin's own gRPC socket (outside the registry directory)")
	resource := flag.String("resource", "nvidia.com/gpu", "extended resource name to advertise")
	count := flag.Int("count", 1, "number of devices")
	prefix := flag.String("id-prefix", "gpu-double", "device ID prefix (make it unique per node)")
	flag.Parse()
	if *registry == "" || *socket == "" {
		log.Fatal("--registry-dir and --socket are required")
	}
	log.SetPrefix("[gpu-device-plugin-double] ")

	p := &plugin{}
	for i := 0; i < *count; i++ {
		p.devices = append(p.devices, &dp.Device{ID: fmt.Sprintf("%s-%d", *prefix, i), Health: dp.Healthy})
	}
	pluginServer := grpc.NewServer()
	dp.RegisterDevicePluginServer(pluginServer, p)
	pl, err := pluginreg.Listen(*socket)
	if err != nil {
		log.Fatal(err)
	}
	go pluginreg.Run(pluginServer, pl)

	regSocket := filepath.Join(*registry, strings.ReplaceAll(*resource, "/", "_")+"-double.sock")
	stopRegistration, err := pluginreg.Serve(regSocket, &reg.PluginInfo{
		Type:              reg.DevicePlugin,
		Name:              *resource,
		Endpoint:          *socket,
		SupportedVersions: []string{dp.Version},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving %d x %s on %s (registration socket %s)", *count, *resource, *socket, regSocket)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	stopRegistration()
	pluginServer.Stop()
	_ = os.Remove(*socket)
}
