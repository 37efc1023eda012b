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
RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}"
# RabbitMQ's delivery-acknowledgement timeout must exceed the longest task (an
# import's hard time limit); see docs/operations.md.
RABBITMQ_CONSUMER_TIMEOUT_MS="${RABBITMQ_CONSUMER_TIMEOUT_MS:-3600000}"
WAIT_SECONDS="${ENSURE_SERVICES_WAIT_SECONDS:-30}"

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

# RabbitMQ (the broker of `make test`'s second pass): start it if it is down, and
# raise its consumer_timeout at runtime when lower than the longest task allows
# (RabbitMQ before 3.12 has no per-queue timeout; rabbitmq.conf keeps it across
# restarts of the node).
ensure_rabbitmq() {
    local host port current
    read -r host port < <(host_port "$RABBITMQ_URL" 5672)
    if ! is_local "$host"; then
        echo "ensure_services: RabbitMQ at $host:$port is not local; not starting it" >&2
        return 0
    fi
    if ! listening "$host" "$port"; then
        if ! command -v rabbitmq-server >/dev/null; then
            echo "ensure_services: RabbitMQ is down and rabbitmq-server is not installed" >&2
            return 0
        fi
        echo "ensure_services: starting RabbitMQ"
        rabbitmq-server -detached || true
        wait_for RabbitMQ "$host" "$port" || return 0
    fi
    command -v rabbitmqctl >/dev/null || return 0
    rabbitmqctl -q await_startup >/dev/null 2>&1 || return 0
    current="$(rabbitmqctl -q eval 'application:get_env(rabbit, consumer_timeout).' 2>/dev/null \
        | tr -dc '0-9')"
    if [[ -n "$current" ]] && (( current < RABBITMQ_CONSUMER_TIMEOUT_MS )); then
        echo "ensure_services: RabbitMQ consumer_timeout ${current} ms -> ${RABBITMQ_CONSUMER_TIMEOUT_MS} ms"
        rabbitmqctl -q eval \
            "application:set_env(rabbit, consumer_timeout, ${RABBITMQ_CONSUMER_TIMEOUT_MS})." \
            >/dev/null || true
    fi
}

ensure_postgres
ensure_redis
ensure_rabbitmq
"$(dirname "${BASH_SOURCE[0]}")/ensure_chromium.sh"
