#!/usr/bin/env bash
# Start the local PostgreSQL and Redis for the test suite when they are not running,
# and wait for RabbitMQ (integration events) when the suite publishes there.
#
# Used by `make test` and `.ci/run`, never by `make run` (which only reports what is
# missing). Only servers on this machine (127.0.0.1 / localhost) are started, and only
# when their binaries exist; anything else is left to `manage.py check_services`,
# which says in one line what is wrong.
set -euo pipefail

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cqrs_orders_test}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/9}"
WAIT_SECONDS="${ENSURE_SERVICES_WAIT_SECONDS:-30}"
# The test settings publish integration events to RabbitMQ unless told otherwise.
INTEGRATION_EVENTS_BROKER="${INTEGRATION_EVENTS_BROKER:-rabbitmq}"
INTEGRATION_EVENTS_URL="${INTEGRATION_EVENTS_URL:-amqp://guest:guest@127.0.0.1:5672//}"

# Print "host port" from a URL such as scheme://user:pass@host:port/db.
host_port() {
    local url="$1" default_port="$2" rest hostport host port
    rest="${url#*://}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    hostport="${rest##*@}"
    host="${hostport%%:*}"
    port="${hostport##*:}"
    [[ "$hostport" == *:* ]] || port="$default_port"
    echo "${host:-127.0.0.1} ${port:-$default_port}"
}

is_local() {
    [[ "$1" == "127.0.0.1" || "$1" == "localhost" || "$1" == "::1" ]]
}

# Tell whether something accepts TCP connections at host:port (within 2 seconds).
listening() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

wait_for() {
    local name="$1" host="$2" port="$3" waited=0
    until listening "$host" "$port"; do
        if (( waited >= WAIT_SECONDS )); then
            echo "ensure_services: $name did not come up at $host:$port within ${WAIT_SECONDS}s" >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "ensure_services: $name is up at $host:$port"
}

ensure_postgres() {
    local host port version
    read -r host port < <(host_port "$DATABASE_URL" 5432)
    listening "$host" "$port" && return 0
    if ! is_local "$host"; then
        echo "ensure_services: PostgreSQL at $host:$port is not local; not starting it" >&2
        return 0
    fi
    if ! command -v pg_ctlcluster >/dev/null || [[ ! -d /etc/postgresql ]]; then
        echo "ensure_services: PostgreSQL is down and pg_ctlcluster is not installed" >&2
        return 0
    fi
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    echo "ensure_services: starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for PostgreSQL "$host" "$port" || true
}

ensure_redis() {
    local host port
    read -r host port < <(host_port "$REDIS_URL" 6379)
    listening "$host" "$port" && return 0
    if ! is_local "$host"; then
        echo "ensure_services: Redis at $host:$port is not local; not starting it" >&2
        return 0
    fi
    if ! command -v redis-server >/dev/null; then
        echo "ensure_services: Redis is down and redis-server is not installed" >&2
        return 0
    fi
    echo "ensure_services: starting Redis on port $port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        || true
    wait_for Redis "$host" "$port" || true
}

# RabbitMQ is a required service, installed and started by the machine's setup, never
# by this script: wait for it, and say so when it does not come (the broker tests
# then fail with the same message).
ensure_rabbitmq() {
    local host port
    [[ "$INTEGRATION_EVENTS_BROKER" == "rabbitmq" ]] || return 0
    read -r host port < <(host_port "$INTEGRATION_EVENTS_URL" 5672)
    listening "$host" "$port" && return 0
    echo "ensure_services: waiting for RabbitMQ at $host:$port (INTEGRATION_EVENTS_BROKER=rabbitmq)"
    wait_for RabbitMQ "$host" "$port" \
        || echo "ensure_services: RabbitMQ is required by the tests of integration events" >&2
}

ensure_postgres
ensure_redis
ensure_rabbitmq
"$(dirname "${BASH_SOURCE[0]}")/ensure_chromium.sh"
