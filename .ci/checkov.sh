#!/usr/bin/env bash
# checkov (CloudFormation framework, offline) on synthesized templates, from its OWN virtual environment:
# checkov pins an old boto3/botocore that would silently downgrade the project's (facts.md).
#
# Usage: .ci/checkov.sh <cdk.out directory>    (prints checkov's JSON report on stdout)
# Exit status: checkov's (non-zero when a check failed), or 2 when the environment cannot be built.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECKOV_VERSION="3.3.30"
VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
PYTHON="${PYTHON:-python3}"
TARGET="${1:?usage: .ci/checkov.sh <cdk.out directory>}"

# Checks that do not apply to this library's resources, with the reason in the README's Security section
# ("checkov: skipped checks"). Keep both lists in step.
SKIP_CHECKS=(
  CKV_AWS_116 # Lambda DLQ: failures reach CloudFormation itself; a DLQ would keep copies of events (SQL parameters)
  CKV_AWS_117 # Lambda in a VPC: the handlers call only the Clean Rooms ML API; no VPC resource is reached
  CKV_AWS_115 # Lambda reserved concurrency: deploy-time handlers, invoked once per resource and poll
  CKV_AWS_173 # Lambda environment encryption (CMK): variables hold a fixed path and function ARNs, no secret
)

if [ ! -x "$VENV/bin/checkov" ] || [ "$("$VENV/bin/python" -m pip show checkov 2>/dev/null | sed -n 's/^Version: //p')" != "$CHECKOV_VERSION" ]; then
  {
    echo "==> creating $VENV with checkov $CHECKOV_VERSION"
    "$PYTHON" -m venv "$VENV"
    # No project constraints here: checkov brings its own pins (that is why it lives apart).
    PIP_CONSTRAINT="" "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  } >&2 || { echo "cannot build the checkov environment in $VENV" >&2; exit 2; }
fi

skip="$(IFS=,; echo "${SKIP_CHECKS[*]}")"
# Offline: no Bridgecrew/Prisma API key, no version check, no download of external checks.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
exec "$VENV/bin/checkov" -d "$TARGET" --framework cloudformation --compact -o json \
  --skip-download --skip-check "$skip"
