# Sourced by tests/run.sh and tests/bench.sh: installs the moto server (PyPI `moto[server]`)
# into .cache/moto-venv if missing, starts it on a free port on 127.0.0.1, stops it when the
# calling script exits, and points the AWS SDK at it.
# CloudWatch metrics go to ministack (PyPI `ministack` + `cbor2`, in .cache/ministack-venv):
# current aws-sdk-cloudwatch speaks rpc-v2-cbor, which moto cannot; ministack can.
start_moto() {
  local venv=.cache/moto-venv port
  if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'moto[server]'
  fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p target
  # tests/moto_server.py: moto with its DynamoDB requests serialised (see there why).
  "$venv/bin/python3" tests/moto_server.py -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
  MOTO_PID=$!
  trap 'kill "$MOTO_PID" ${MINISTACK_PID:+"$MINISTACK_PID"} 2>/dev/null || true' EXIT
  start_ministack || return 1
  for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "moto did not start; see target/moto.log" >&2; return 1; }
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_EC2_METADATA_DISABLED=true
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Only the CloudWatch (monitoring) service; its own venv so its pins cannot disturb moto's.
start_ministack() {
  local venv=.cache/ministack-venv port
  if [ ! -x "$venv/bin/ministack" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet ministack cbor2
  fi
  port=$(free_port)
  mkdir -p target
  BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" SERVICES=cloudwatch "$venv/bin/ministack" > target/ministack.log 2>&1 &
  MINISTACK_PID=$!
  for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$port/_ministack/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "http://127.0.0.1:$port/_ministack/health" >/dev/null || { echo "ministack did not start; see target/ministack.log" >&2; return 1; }
  export AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:$port"
}
