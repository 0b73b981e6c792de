"""A DOUBLE of the Azure Files CSI driver's provisioner (file.csi.azure.com), for the local control plane.

On AKS, a PersistentVolumeClaim of the `azurefile-csi` StorageClass gets a new Azure Files share as its
PersistentVolume. Here no Azure exists, so this stand-in gives each such claim a hostPath PersistentVolume
bound to it in advance (claimRef), under one folder of this machine: the dev cluster's nodes all run on
this machine, so every pod of a multi-node job sees the same folder, as on a real share. When the claim is
gone (the TrainingJob was deleted) the volume and its folder are deleted, as the driver's `Delete` reclaim
policy would.

Standard library only (hack/devcluster starts it before any virtualenv exists): it talks to the apiserver
with the dev cluster's admin client certificate and polls twice a second.

    python3 azurefile_provisioner.py --server https://127.0.0.1:16443 --pki DIR --root DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

STORAGE_CLASS = "azurefile-csi"
LABEL = "batchai.io/provisioned-by"
LABEL_VALUE = "azurefile-provisioner-double"


class Api:
    def __init__(self, server: str, pki: Path) -> None:
        self.server = server.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")


def volume_for(claim: dict[str, Any], root: Path) -> dict[str, Any]:
    meta, spec = claim["metadata"], claim["spec"]
    folder = root / meta["namespace"] / f"{meta['name']}-{meta['uid']}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}", "labels": {LABEL: LABEL_VALUE}},
        "spec": {
            "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
            "accessModes": spec.get("accessModes") or ["ReadWriteMany"],
            "storageClassName": STORAGE_CLASS,
            "persistentVolumeReclaimPolicy": "Retain",  # deleted here, once released
            "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
            "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
        },
    }


def step(api: Api, root: Path) -> None:
    for claim in api.call("GET", "/api/v1/persistentvolumeclaims")["items"]:
        if claim["spec"].get("storageClassName") != STORAGE_CLASS or claim["spec"].get("volumeName"):
            continue
        if (claim.get("status") or {}).get("phase") not in (None, "Pending"):
            continue
        try:
            api.call("POST", "/api/v1/persistentvolumes", volume_for(claim, root))
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise
    volumes = api.call("GET", f"/api/v1/persistentvolumes?labelSelector={LABEL}%3D{LABEL_VALUE}")["items"]
    for pv in volumes:
        if (pv.get("status") or {}).get("phase") in ("Released", "Failed"):
            shutil.rmtree(pv["spec"]["hostPath"]["path"], ignore_errors=True)
            try:
                api.call("DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--pki", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path)
    args = parser.parse_args()
    api = Api(args.server, args.pki)
    while True:
        try:
            step(api, args.root)
        except (OSError, urllib.error.URLError, ValueError) as e:  # the apiserver restarting: go on
            print(f"azurefile-provisioner double: {e}", file=sys.stderr, flush=True)
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
