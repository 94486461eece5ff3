#!/usr/bin/env bash
# The main job end to end: package the example project as a release in the embedded default
# store, inspect it, deploy it to `dev` in a GitOps repository, and render it through the
# Argo CD plugin the way Argo CD runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet --bins
bin=$PWD/target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The example project as its own git repository, with fixed dates so every run of the demo
# produces the same commit, and therefore the same release.
repo="$work/monorepo"
mkdir -p "$repo/services"
cp -r testdata/projects/auth-service "$repo/services/auth-service"
export GIT_AUTHOR_NAME="Ada Lovelace" GIT_AUTHOR_EMAIL="ada@example.com"
export GIT_COMMITTER_NAME="Ada Lovelace" GIT_COMMITTER_EMAIL="ada@example.com"
export GIT_AUTHOR_DATE="2024-05-01T12:00:00Z" GIT_COMMITTER_DATE="2024-05-01T12:00:00Z"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git -C "$repo" init -q -b main
git -C "$repo" add .
git -C "$repo" commit -q -m "Add auth-service"
git -C "$repo" tag auth-service/v1.0.0

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "forge-pack build (embedded store)"
"$bin/forge-pack" build -C "$repo/services/auth-service"

step "forge-pack list company/monorepo/auth-service"
"$bin/forge-pack" list company/monorepo/auth-service

step "forge-pack inspect company/monorepo/auth-service:v1.0.0"
"$bin/forge-pack" inspect company/monorepo/auth-service:v1.0.0

step "forge-pack deploy dev (policy-checked commit in a GitOps repository)"
gitops="$work/gitops"
git init -q -b main "$gitops"
cp plugin/policy.example.yaml "$gitops/policy.yaml"
git -C "$gitops" add policy.yaml
git -C "$gitops" commit -q -m "Add the environment policy"
"$bin/forge-pack" deploy dev company/monorepo/auth-service v1.0.0 --gitops "$gitops" --actor demo
cat "$gitops/envs/dev/auth-service/release.yaml" >&2
"$bin/forge-pack" status --gitops "$gitops"

step "forge-cmp generate (as Argo CD runs it: app directory as working directory, stdin closed)"
# The sidecar's operator says which releases each Argo CD project may deploy; the demo's
# release lives in the embedded store on this machine's disk, which needs consent too.
printf 'apiVersion: forge.dev/v1alpha1\nkind: SidecarConfig\nprojects:\n  default:\n    images: ["*"]\nlocalLayouts: true\n' > "$work/sidecar.yaml"
(cd "$gitops/envs/dev/auth-service" &&
  ARGOCD_APP_NAME=auth-service-dev ARGOCD_APP_NAMESPACE=auth ARGOCD_APP_PROJECT_NAME=default \
  FORGE_CMP_CONFIG="$work/sidecar.yaml" \
  "$bin/forge-cmp" generate </dev/null)
