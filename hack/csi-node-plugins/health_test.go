package main

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// A dead mount is reported on the pod that uses it, naming the volume as the pod spec does.
func TestPodOfNamesThePodAndItsVolume(t *testing.T) {
	req := &csi.NodePublishVolumeRequest{
		TargetPath: "/k/pods/0d1e-uid/volumes/kubernetes.io~csi/job-bfs-data/mount",
		VolumeContext: map[string]string{
			"csi.storage.k8s.io/pod.namespace": "team-a", "CSI.storage.k8s.io/pod.name": "job-0-abc",
			"csi.storage.k8s.io/pod.uid": "0d1e-uid",
		},
	}
	got := podOf(req)
	want := mountedFor{namespace: "team-a", pod: "job-0-abc", uid: "0d1e-uid", volume: "job-bfs-data"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestHasExited(t *testing.T) {
	done := make(chan struct{})
	if hasExited(nil) || hasExited(done) {
		t.Fatal("a running (or untracked) mount's rclone is not known to have ended")
	}
	close(done)
	if !hasExited(done) {
		t.Fatal("a closed channel means rclone ended")
	}
}
