package pluginreg

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reg "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// The kubelet's side of the exchange: dial the socket in plugins_registry, GetInfo, NotifyRegistrationStatus.
func TestServeAnswersThePluginWatcherAndStopRemovesTheSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "reg") // short: a unix socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	socket := filepath.Join(dir, "plugins_registry", "example.com-reg.sock")
	info := &reg.PluginInfo{Type: reg.CSIPlugin, Name: "example.com", Endpoint: "/x/csi.sock", SupportedVersions: []string{"1.0.0"}}
	if err := os.MkdirAll(filepath.Dir(socket), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(socket, nil, 0o600); err != nil { // a stale socket of an earlier run
		t.Fatal(err)
	}
	stop, err := Serve(socket, info)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := reg.NewRegistrationClient(conn)
	got, err := client.GetInfo(ctx, &reg.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != info.Type || got.Name != info.Name || got.Endpoint != info.Endpoint || got.SupportedVersions[0] != "1.0.0" {
		t.Fatalf("GetInfo: %v", got)
	}
	if _, err := client.NotifyRegistrationStatus(ctx, &reg.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Fatalf("socket left after stop: %v", err)
	}
}
