#!/usr/bin/env bash
# Build and push the runtime images, then print the variables that pin them into compiled pipelines:
#   eval "$(containers/build.sh registry.example.com/unipic 0.1.0)" && unipic compile
set -euo pipefail
cd "$(dirname "$0")/.."
registry=${1:?usage: containers/build.sh REGISTRY TAG}
tag=${2:?usage: containers/build.sh REGISTRY TAG}
commit=$(git rev-parse HEAD)
for kind in curate train serve; do
  ref="$registry/unipic-$kind:$tag"
  docker build -f "containers/Dockerfile.$kind" --build-arg GIT_COMMIT="$commit" -t "$ref" . >&2
  docker push "$ref" >&2
  digest=$(docker inspect --format '{{index .RepoDigests 0}}' "$ref")
  echo "export UNIPIC_IMAGE_${kind^^}=$digest"
done
