// Package pluginreg is the kubelet side of plugin registration for the dev cluster's host plugins (the GPU
// device-plugin double and the CSI node plugins): a gRPC Registration server on a socket in the kubelet's
// plugins_registry directory, which the kubelet's plugin watcher finds, asks for GetInfo, then answers with
// NotifyRegistrationStatus. Upstream's node-driver-registrar sidecar does the same for CSI drivers.
package pluginreg

import (
	"context"
	"log"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	reg "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

type registration struct {
	reg.UnimplementedRegistrationServer
	info *reg.PluginInfo
}

func (r *registration) GetInfo(context.Context, *reg.InfoRequest) (*reg.PluginInfo, error) {
	return r.info, nil
}

func (r *registration) NotifyRegistrationStatus(_ context.Context, s *reg.RegistrationStatus) (*reg.RegistrationStatusResponse, error) {
	if s.PluginRegistered {
		log.Printf("registered with the kubelet as %s", r.info.Name)
	} else {
		log.Printf("the kubelet refused the registration: %s", s.Error)
	}
	return &reg.RegistrationStatusResponse{}, nil
}

// Listen listens on the unix socket at path, creating its directory and replacing a stale socket of an
// earlier run.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	_ = os.Remove(path)
	return net.Listen("unix", path)
}

// Serve answers the kubelet's plugin watcher on socket (a path inside its plugins_registry directory) with
// info. Start the plugin's own service at info.Endpoint first: the kubelet connects to it as soon as it has
// registered the plugin. The returned function stops the server and removes the socket.
func Serve(socket string, info *reg.PluginInfo) (func(), error) {
	l, err := Listen(socket)
	if err != nil {
		return nil, err
	}
	server := grpc.NewServer()
	reg.RegisterRegistrationServer(server, &registration{info: info})
	go Run(server, l)
	return func() {
		server.Stop()
		_ = os.Remove(socket)
	}, nil
}

// Run serves s on l until s is stopped; any other end of serving ends the process (the kubelet would
// otherwise keep a registration whose plugin no longer answers).
func Run(s *grpc.Server, l net.Listener) {
	if err := s.Serve(l); err != nil {
		log.Fatal(err)
	}
}
