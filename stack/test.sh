#!/usr/bin/env bash
# The project's test command (`npm test`; .ci/run calls it): installs whatever is
# missing and starts the local stack (stack/stack.sh up), then runs lint,
# typecheck and every vitest project (unit, and stack against the real servers).
#
# The stack is left running afterwards, so the next run starts in seconds; stop
# it with `npm run stack -- down`. Under CI=true it is stopped on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
began=$SECONDS
results=()
failed=0

step() {
  local name=$1
  shift
  printf '\n=== %s: %s\n' "$name" "$*"
  if "$@"; then
    results+=("$name ok")
  else
    results+=("$name FAILED")
    failed=1
  fi
}

if [ "${CI:-}" = true ]; then
  trap 'bash stack/stack.sh down' EXIT
fi

step stack bash stack/stack.sh up
step lint npm run lint
step typecheck npm run typecheck
step tests npx vitest run --reporter=default --reporter=json --outputFile.json=.stack/vitest-report.json
# The plain closing line CI reads: "tests: N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync(".stack/vitest-report.json", "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' 2>/dev/null || echo "tests: 0 passed, 1 failed"

summary=$(IFS=,; echo "${results[*]}")
printf '\ntest.sh: %s (%d s)%s\n' "${summary//,/, }" $((SECONDS - began)) \
  "$([ "${CI:-}" = true ] || echo '; the stack stays up: npm run stack -- down')"
exit "$failed"
