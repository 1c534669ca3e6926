#!/usr/bin/env bash
# The container test (not part of `npm test`; .ci/run runs it): builds the image from the Dockerfile
# with podman on the stand-in base image (scripts/base-image.sh), runs it on a free loopback port
# against the built-in sandbox (no TikTok credentials, NODE_ENV=development), and checks that it
# serves a page, runs as uid 1000, holds no dev dependency, passes its HEALTHCHECK, exits 0 within
# STOP_LIMIT_SECONDS of `podman stop`, and does the same with REDIS_URL on the host's Redis
# (127.0.0.1:6379, under a key prefix of its own, removed afterwards). Reports the build time and the
# image's size above the base. Removes every container it starts. Run as root from anywhere. Ends
# with "container: N passed, N failed"; exits 1 at the first failed check.
#
# podman on these machines needs `--runtime runc` (crun refuses the cgroup layout), the ulimits below
# (the defaults exceed the machine's hard limits) and `--network host` (the npm registry is reached
# from the host network; the gateway listens on 127.0.0.1 only). `--format docker` keeps the
# HEALTHCHECK, which the OCI format drops.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-localhost/tiktok-research-gateway:container-test}"
BASE_IMAGE=docker.io/library/node:24-slim
STOP_LIMIT_SECONDS="${STOP_LIMIT_SECONDS:-5}"
REDIS_URL_HOST=redis://127.0.0.1:6379
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)

passed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() {
  echo "container test FAILED: $*" >&2
  echo "container: $passed passed, 1 failed"
  exit 1
}
now_ms() { date +%s%3N; }
# Without systemd podman cannot schedule the periodic healthcheck and says so on every run, stop and
# rm; the check itself runs below with `podman healthcheck run`.
quiet_podman() { podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

containers=()
redis_prefix=""
work="$(mktemp -d)"
cleanup() {
  local c
  for c in "${containers[@]}"; do quiet_podman rm --force --time 0 "$c" >/dev/null || true; done
  if [[ -n "$redis_prefix" ]]; then
    redis-cli -u "$REDIS_URL_HOST" --scan --pattern "${redis_prefix}*" | xargs -r redis-cli -u "$REDIS_URL_HOST" del >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== base image"
bash scripts/base-image.sh
podman image exists "$BASE_IMAGE" || fail "no base image $BASE_IMAGE"

echo "== podman build $IMAGE"
old_id="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
started="$(now_ms)"
if ! podman build --runtime runc --network host "${ULIMITS[@]}" --format docker --pull=never \
  --tag "$IMAGE" . >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  fail "podman build failed (last lines above)"
fi
build_ms=$(($(now_ms) - started))
new_id="$(podman image inspect --format '{{.Id}}' "$IMAGE")"
# The image this tag named before is no use any more (its layers that the new one shares stay).
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
image_size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
base_size="$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE")"
echo "built in $((build_ms / 1000)).$(((build_ms % 1000) / 100)) s"

[[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" == node ]] || fail "the image's USER is not node"
[[ "$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")" == *healthz* ]] ||
  fail "the image has no HEALTHCHECK on /healthz (built without --format docker?)"
ok "the image's USER is node and its HEALTHCHECK is on /healthz"

free_port() {
  node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close() })"
}

# GET url: prints the status, the content type and the body on three lines.
get() {
  node -e "
    fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then(async (r) => {
      console.log(r.status); console.log(r.headers.get('content-type')); console.log(await r.text())
    }, (e) => { console.log(0); console.log(''); console.log(String(e.cause ?? e)) })" "$1"
}

# start NAME ENV...: runs the image on a free loopback port; sets $port and waits for /healthz.
start() {
  local name="$1" deadline reply
  shift
  port="$(free_port)"
  containers+=("$name")
  quiet_podman run --detach --name "$name" --runtime runc --network host "${ULIMITS[@]}" \
    -e NODE_ENV=development -e HOST=127.0.0.1 -e PORT="$port" "$@" "$IMAGE" >/dev/null
  deadline=$(($(now_ms) + 20000))
  while (($(now_ms) < deadline)); do
    reply="$(get "http://127.0.0.1:$port/healthz")"
    [[ "${reply%%$'\n'*}" == 200 ]] && return 0
    if [[ "$(podman inspect --format '{{.State.Running}}' "$name")" != true ]]; then
      podman logs "$name" 2>&1 | tail -n 20 >&2
      fail "$name exited on start (its last log lines above)"
    fi
    sleep 0.2
  done
  podman logs "$name" 2>&1 | tail -n 20 >&2
  fail "$name did not answer /healthz on 127.0.0.1:$port within 20 s"
}

# check_page NAME: a followers page from the sandbox through the gateway.
check_page() {
  local reply status type body
  reply="$(get "http://127.0.0.1:$port/v1/users/container.test/followers?max_count=5")"
  status="$(sed -n 1p <<<"$reply")" type="$(sed -n 2p <<<"$reply")" body="$(sed -n '3,$p' <<<"$reply")"
  [[ "$status" == 200 ]] || fail "$1: GET /v1/users/container.test/followers answered $status: $body"
  [[ "$type" == application/json* ]] || fail "$1: the followers page is $type, not JSON"
  node -e "
    const page = JSON.parse(process.argv[1])
    if (page.username !== 'container.test' || !Array.isArray(page.followers) || page.followers.length !== 5) process.exit(1)" "$body" ||
    fail "$1: the followers page is not the 5 followers of container.test: $body"
  ok "$1 serves a followers page (200 JSON, 5 followers)"
}

# check_stop NAME: podman stop (SIGTERM), then exit code 0 within STOP_LIMIT_SECONDS.
check_stop() {
  local started stop_ms code
  started="$(now_ms)"
  quiet_podman stop --time 30 "$1" >/dev/null
  stop_ms=$(($(now_ms) - started))
  code="$(podman inspect --format '{{.State.ExitCode}}' "$1")"
  [[ "$code" == 0 ]] || { podman logs "$1" 2>&1 | tail -n 10 >&2; fail "$1 exited $code after podman stop"; }
  ((stop_ms <= STOP_LIMIT_SECONDS * 1000)) || fail "$1 took ${stop_ms} ms to exit after podman stop (limit ${STOP_LIMIT_SECONDS} s)"
  ok "$1 exits 0 ${stop_ms} ms after podman stop"
}

echo "== the image alone (state in process memory)"
c1="gw-container-test-$$-memory"
start "$c1"
ok "$c1 answers /healthz on 127.0.0.1:$port"
check_page "$c1"
# The whole log first, then grep: `podman logs | grep -q` fails under pipefail when grep stops
# reading before podman has written everything.
sandbox_logged() { grep -q 'SANDBOX MODE' <<<"$(podman logs "$c1" 2>&1)"; }
for _ in $(seq 50); do sandbox_logged && break; sleep 0.1; done
sandbox_logged || fail "$c1 did not log SANDBOX MODE"
ok "$c1 answers from the built-in sandbox (it logged SANDBOX MODE)"

uid="$(podman exec "$c1" awk '/^Uid:/ { print $2 }' /proc/1/status)"
[[ "$uid" == 1000 ]] || fail "$c1: the gateway (PID 1) runs as uid $uid, not 1000"
[[ "$(podman exec "$c1" id -un)" == node ]] || fail "$c1: commands run as $(podman exec "$c1" id -un), not node"
ok "$c1 runs as uid 1000 (node)"

# Every package the lock file marks dev-only must be absent from /app/node_modules; the production
# dependencies must be there.
node -e "
  const lock = require('./package-lock.json'), pkg = require('./package.json')
  const dev = Object.entries(lock.packages).filter(([path, p]) => path && p.dev).map(([path]) => path)
  console.log(JSON.stringify({ dev, prod: Object.keys(pkg.dependencies).map((n) => 'node_modules/' + n) }))" >"$work/deps.json"
podman exec -i "$c1" node -e "
  const { existsSync } = require('node:fs')
  const { dev, prod } = JSON.parse(require('node:fs').readFileSync(0, 'utf8'))
  const present = dev.filter((path) => existsSync('/app/' + path + '/package.json'))
  const missing = prod.filter((path) => !existsSync('/app/' + path + '/package.json'))
  if (present.length) console.log('dev dependencies in the image: ' + present.slice(0, 20).join(', '))
  if (missing.length) console.log('production dependencies missing: ' + missing.join(', '))
  process.exit(present.length || missing.length ? 1 : 0)" <"$work/deps.json" >"$work/deps.out" ||
  fail "$c1: $(cat "$work/deps.out")"
ok "$c1 holds no dev dependency ($(node -e "console.log(JSON.parse(require('node:fs').readFileSync(process.argv[1])).dev.length)" "$work/deps.json") dev-only packages in the lock file, none in /app/node_modules)"

podman healthcheck run "$c1" >/dev/null || fail "$c1: podman healthcheck run failed"
[[ "$(podman inspect --format '{{.State.Health.Status}}' "$c1")" == healthy ]] || fail "$c1: health status not healthy"
ok "$c1 passes its HEALTHCHECK"
check_stop "$c1"

echo "== with REDIS_URL on the host's Redis"
command -v redis-cli >/dev/null || fail "redis-cli not found (Debian's redis-tools)"
[[ "$(redis-cli -u "$REDIS_URL_HOST" ping 2>&1)" == PONG ]] || fail "no Redis answers on 127.0.0.1:6379"
redis_prefix="container-test-$$-$(date +%s):"
c2="gw-container-test-$$-redis"
start "$c2" -e REDIS_URL="$REDIS_URL_HOST" -e REDIS_KEY_PREFIX="$redis_prefix"
reply="$(get "http://127.0.0.1:$port/readyz")"
[[ "$(head -n 1 <<<"$reply")" == 200 ]] || fail "$c2: /readyz answered: $reply"
check_page "$c2"
keys="$(redis-cli -u "$REDIS_URL_HOST" --scan --pattern "${redis_prefix}*" | wc -l)"
((keys > 0)) || fail "$c2 wrote no key under $redis_prefix in Redis"
ok "$c2 keeps its state in Redis ($keys keys under its prefix)"
check_stop "$c2"

echo "image $IMAGE: $(((image_size - base_size) / 1000000)) MB above the base image ($((image_size / 1000000)) MB in all, base $((base_size / 1000000)) MB); built in $((build_ms / 1000)).$(((build_ms % 1000) / 100)) s"
echo "container: $passed passed, 0 failed"
