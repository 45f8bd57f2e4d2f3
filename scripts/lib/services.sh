# Sourced by scripts/test and scripts/bench: throwaway servers on loopback, stopped and
# removed when the calling script exits.
#   start_postgres   # initdb into a temporary directory, start; exports
#                    # SLUICE_TEST_POSTGRES_URL (superuser `sluice`, database `postgres`)
#                    # and SLUICE_TEST_POSTGRES_CA (the CA that signed the server's certificate)
#   start_s3         # moto's S3-compatible server from .venv; exports SLUICE_TEST_S3_ENDPOINT
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user
# that the Debian package creates.

trap stop_services EXIT
stop_services() {
  stop_postgres
  [ -z "${s3_pid:-}" ] || kill "$s3_pid" 2>/dev/null || true
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_s3() {
  local root port
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  [ -x "$root/.venv/bin/python" ] || python3 -m venv "$root/.venv"
  if ! "$root/.venv/bin/python" -c 'import moto.server' 2>/dev/null; then
    "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check 'moto[server]'
  fi
  port=$(free_port)
  "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >/tmp/sluice-moto.$$.log 2>&1 &
  s3_pid=$!
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
      export SLUICE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
      # What sluice's S3 clients read from the usual AWS environment; moto accepts any
      # credentials, and no test may reach for an instance role.
      export AWS_ACCESS_KEY_ID=sluice-test AWS_SECRET_ACCESS_KEY=sluice-test AWS_REGION=us-east-1
      export AWS_EC2_METADATA_DISABLED=true
      echo "moto S3 on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "error: the moto S3 server did not start:" >&2
  cat /tmp/sluice-moto.$$.log >&2
  return 1
}

pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

start_postgres() {
  PG_BIN="$(pg_bin_dir)"
  if [ -z "$PG_BIN" ]; then
    echo "error: PostgreSQL is not installed (apt-get install -y postgresql)" >&2
    return 1
  fi
  pg_dir=$(mktemp -d /tmp/sluice-pg.XXXXXX)
  local port password
  port=$(free_port)
  password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$password" > "$pg_dir/password"
  # TLS: a throwaway CA and a certificate for 127.0.0.1 it signed, so the TLS tests can
  # verify the server against the CA.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sluice test CA" \
    -keyout "$pg_dir/ca.key" -out "$pg_dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$pg_dir/server.key" -out "$pg_dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$pg_dir/server.ext"
  openssl x509 -req -in "$pg_dir/server.csr" -CA "$pg_dir/ca.crt" -CAkey "$pg_dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$pg_dir/server.ext" -out "$pg_dir/server.crt" 2>/dev/null
  chmod 600 "$pg_dir/server.key"
  chmod 755 "$pg_dir"
  [ "$(id -u)" -ne 0 ] || chown -R postgres "$pg_dir"
  as_postgres "$PG_BIN/initdb" -D "$pg_dir/data" -U sluice --pwfile="$pg_dir/password" \
    --auth=scram-sha-256 -E UTF8 --no-locale >"$pg_dir/initdb.log"
  # fsync off: nothing here survives the script, and the tests kill sluice, never the server.
  as_postgres "$PG_BIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $pg_dir -c fsync=off -c max_connections=200 -c ssl=on \
        -c ssl_cert_file=$pg_dir/server.crt -c ssl_key_file=$pg_dir/server.key" start >/dev/null
  export PG_BIN
  export SLUICE_TEST_POSTGRES_CA="$pg_dir/ca.crt"
  export SLUICE_TEST_POSTGRES_URL="postgres://sluice:$password@127.0.0.1:$port/postgres?sslmode=disable"
  echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_postgres() {
  [ -n "${pg_dir:-}" ] || return 0
  as_postgres "$PG_BIN/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  # A test may leave a filesystem mounted for a tablespace.
  grep -o " $pg_dir[^ ]*" /proc/mounts 2>/dev/null | xargs -r -n1 umount 2>/dev/null || true
  rm -rf "$pg_dir"
}
