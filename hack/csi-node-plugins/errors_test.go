package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/status"
)

// The texts the kubelet's FailedMount Events carry, as the upstream drivers write them (tests/k8s/README.md, "Real mounts").

func TestBlobMountFailureText(t *testing.T) {
	err := mountFailed("exit status 1", "Error: failed to initialize new pipeline [failed to authenticate azstorage "+
		"credentials with error [BlockBlob::TestPipeline : [AuthorizationFailure]]]\n")
	want := "Mount failed with error: exit status 1, output: Error: failed to initialize new pipeline [failed to " +
		"authenticate azstorage credentials with error [BlockBlob::TestPipeline : [AuthorizationFailure]]]\n\n" +
		"Please refer to http://aka.ms/blobmounterror for possible causes and solutions for mount errors."
	if got := status.Convert(err).Message(); got != want {
		t.Fatalf("got %q", got)
	}
}

func TestKeyThatIsNotBase64FailsAsBlobfuse2Does(t *testing.T) {
	_, err := containerClient("http://127.0.0.1:9/acct", "acct", "not%base64==", "", "data")
	if err == nil || !strings.HasPrefix(err.Error(), "decode account key: illegal base64 data at input byte 3") {
		t.Fatalf("got %v", err)
	}
}

func TestAzureFilesMountFailureText(t *testing.T) {
	msg := status.Convert(cifsFailure("v1", "//acct.file.core.windows.net/logs", "/t", "actimeo=30",
		"mount error(13): Permission denied")).Message()
	for _, want := range []string{
		"volume(v1) mount //acct.file.core.windows.net/logs on /t failed with mount failed: exit status 32\n",
		"Mounting arguments: -t cifs -o actimeo=30,<masked> //acct.file.core.windows.net/logs /t\n",
		"Output: mount error(13): Permission denied\n",
		"Please refer to http://aka.ms/filemounterror for possible causes and solutions for mount errors.",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

func TestMountInfoEscapes(t *testing.T) {
	if got := unescapeMountPath(`/a\040b`); got != "/a b" {
		t.Fatalf("got %q", got)
	}
}
