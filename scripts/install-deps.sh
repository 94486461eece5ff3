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
