#!/usr/bin/env bash
# Installs what the tests and the demo need when it is missing: skopeo (reads our OCI
# layouts), the CNCF distribution registry, htpasswd and openssl (auth and TLS registries),
# hyperfine (benchmarks), PyYAML (a YAML 1.1 reader), the oras client (interoperability) and
# PyJWT with cryptography (the test token server of bearer-auth registries).
set -euo pipefail

missing_apt=()
command -v skopeo >/dev/null || missing_apt+=(skopeo)
command -v docker-registry >/dev/null || missing_apt+=(docker-registry)
command -v git >/dev/null || missing_apt+=(git)
command -v htpasswd >/dev/null || missing_apt+=(apache2-utils)
command -v openssl >/dev/null || missing_apt+=(openssl)
command -v hyperfine >/dev/null || missing_apt+=(hyperfine)
command -v python3 >/dev/null || missing_apt+=(python3)
# kubectl (its --dry-run=client checks the install manifests); Debian ships it as kubernetes-client.
command -v kubectl >/dev/null || missing_apt+=(kubernetes-client)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "error: need root to install: $*" >&2; exit 1
  fi
}

if [ ${#missing_apt[@]} -gt 0 ]; then
  echo "installing ${missing_apt[*]} (apt-get)" >&2
  as_root apt-get update -qq
  # A package's service must not start on the machine: the tests run their own registries.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi

missing_pip=()
python3 -c 'import yaml' 2>/dev/null || missing_pip+=(pyyaml)
python3 -c 'import oras.client' 2>/dev/null || missing_pip+=(oras)
python3 -c 'import jwt, cryptography' 2>/dev/null || missing_pip+=(pyjwt cryptography)
python3 -c 'import ruamel.yaml' 2>/dev/null || missing_pip+=(ruamel.yaml)
if [ ${#missing_pip[@]} -gt 0 ]; then
  echo "installing ${missing_pip[*]} (pip)" >&2
  python3 -m pip install --quiet --root-user-action=ignore "${missing_pip[@]}" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "${missing_pip[@]}"
fi

# Go tools the tests run against (cosign, crane, oras, kustomize), pinned, installed once into
# $GOBIN or $HOME/go/bin with `go install`. Without a recent enough Go, the toolchain comes
# from the Go module proxy (as GOTOOLCHAIN would fetch it).
GO_TOOLS=(
  cosign=github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3
  crane=github.com/google/go-containerregistry/cmd/crane@v0.22.1
  oras=oras.land/oras/cmd/oras@v1.3.6
  kustomize=sigs.k8s.io/kustomize/kustomize/v5@v5.8.2
)
GO_VERSION=1.26.8
gobin="${GOBIN:-$HOME/go/bin}"
missing_go=()
for tool in "${GO_TOOLS[@]}"; do
  [ -x "$gobin/${tool%%=*}" ] || missing_go+=("${tool#*=}")
done
if [ ${#missing_go[@]} -gt 0 ]; then
  go_bin=go
  go_minor=$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
  if [ -z "$go_minor" ] || [ "$go_minor" -lt 25 ]; then
    toolchain="$HOME/.cache/forge-pack/go$GO_VERSION"
    if [ ! -x "$toolchain/bin/go" ]; then
      arch=$(uname -m); case "$arch" in x86_64) arch=amd64;; aarch64) arch=arm64;; esac
      zip="$HOME/.cache/forge-pack/go$GO_VERSION.zip"
      mkdir -p "$HOME/.cache/forge-pack"
      echo "downloading Go $GO_VERSION from the Go module proxy" >&2
      curl -fsSL -o "$zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$arch.zip"
      python3 - "$zip" "$toolchain" <<'PY'
import os, sys, zipfile
zip_path, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(zip_path) as archive:
    for info in archive.infolist():
        # Entries are golang.org/toolchain@<version>/<path>.
        parts = info.filename.split("/")
        at = next((i for i, part in enumerate(parts) if part.startswith("toolchain@")), None)
        name = "/".join(parts[at + 1:]) if at is not None else ""
        if not name or info.is_dir():
            continue
        path = os.path.join(target, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with archive.open(info) as src, open(path, "wb") as dst:
            dst.write(src.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(path, mode or 0o644)
PY
      rm -f "$zip"
    fi
    go_bin="$toolchain/bin/go"
  fi
  for module in "${missing_go[@]}"; do
    echo "installing $module (go install; a few minutes on two cores)" >&2
    GOBIN="$gobin" GOFLAGS=-mod=mod "$go_bin" install "$module"
  done
fi
