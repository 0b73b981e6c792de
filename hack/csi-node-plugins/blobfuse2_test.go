package main

import (
	"reflect"
	"strings"
	"testing"
)

// The operator's attribute (manifests/volumes.py) for Batch AI's default blobfuse options.
const operatorDefault = "-o allow_other,--use-https=true,-o attr_timeout=240,-o entry_timeout=240," +
	"-o negative_timeout=120,--cancel-list-on-mount-seconds=0"

func TestUpstreamArgsAddTheDefaultsNotGiven(t *testing.T) {
	got := upstreamArgs("/t", operatorDefault, false, "/tmp/v", "data")
	want := strings.Fields("mount /t -o allow_other --use-https=true -o attr_timeout=240 -o entry_timeout=240 " +
		"-o negative_timeout=120 --cancel-list-on-mount-seconds=0 --pre-mount-validate=true --tmp-path=/tmp/v " +
		"--container-name=data --empty-dir-check=false --disable-version-check=true")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestUpstreamDefaultListingDelayIsTenSeconds(t *testing.T) {
	cfg, err := parseBlobfuse2(upstreamArgs("/t", "", true, "/tmp/v", "data"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.cancelListSeconds != 10 || !cfg.readOnly || !cfg.preMountValidate || cfg.container != "data" {
		t.Fatalf("%+v", cfg)
	}
}

func TestParseTheOperatorsOptions(t *testing.T) {
	cfg, err := parseBlobfuse2(upstreamArgs("/t", operatorDefault, false, "/tmp/v", "data"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.cancelListSeconds != 0 || cfg.readOnly || cfg.fuse["attr_timeout"] != "240" || !cfg.useHTTPS {
		t.Fatalf("%+v", cfg)
	}
	args := strings.Join(rcloneArgs(cfg, "/s/rc.sock", "/s/log"), " ")
	for _, want := range []string{"mount :azureblob:data /t", "--allow-other", "--attr-timeout 4m0s",
		"--dir-cache-time 4m0s", "--cache-dir /tmp/v", "--azureblob-directory-markers"} {
		if !strings.Contains(args, want) {
			t.Errorf("%q lacks %q", args, want)
		}
	}
	if strings.Contains(args, "--read-only") {
		t.Errorf("read-write mount got --read-only: %s", args)
	}
}

func TestBlobfuse2RefusesWhatItDoesNotKnow(t *testing.T) {
	for options, want := range map[string]string{
		"--config-file=/etc/x": "unknown flag: --config-file",
		"-o dev":               "invalid FUSE options: dev",
		"--use-https=maybe":    `invalid argument "maybe" for "--use-https" flag`,
		"--cache-size-mb=lots": `invalid argument "lots" for "--cache-size-mb" flag`,
		"-o allow_other extra": "accepts 1 arg(s), received 2",
		"-x":                   "unknown shorthand flag: 'x' in -x",
		"--cache-size-mb":      "flag needs an argument: --cache-size-mb",
	} {
		_, err := parseBlobfuse2(upstreamArgs("/t", options, false, "/tmp/v", "data"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", options, err, want)
		}
	}
}

func TestBlobEndpoint(t *testing.T) {
	for _, c := range []struct {
		server, suffix string
		https          bool
		want           string
	}{
		{"", "", true, "https://acct.blob.core.windows.net"},
		{"", "core.chinacloudapi.cn", true, "https://acct.blob.core.chinacloudapi.cn"},
		{"http://127.0.0.1:20100/acct/", "", true, "http://127.0.0.1:20100/acct"},
		{"acct.privatelink.blob.core.windows.net", "", false, "http://acct.privatelink.blob.core.windows.net"},
	} {
		if got := blobEndpoint(c.server, "acct", c.suffix, c.https); got != c.want {
			t.Errorf("%+v: got %s", c, got)
		}
	}
}
