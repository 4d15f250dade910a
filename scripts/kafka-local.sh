#!/usr/bin/env bash
# Manage a local, single-node Apache Kafka broker (KRaft: broker and controller in one
# JVM) for tests, CI and the demo. The jars come from Maven Central (see kafka-pom.xml)
# and run on the machine's Java 17.
#
#   scripts/kafka-local.sh fetch        download the broker jars into the cache (idempotent)
#   scripts/kafka-local.sh start DIR    start a broker whose files live in DIR; prints
#                                       only its bootstrap address (127.0.0.1:PORT) on stdout
#   scripts/kafka-local.sh stop DIR     stop it (SIGTERM, then SIGKILL after a grace period)
#   scripts/kafka-local.sh status DIR   print its state; exit 0 when running, 3 when not
#                                       (stop and status create nothing)
#
# Environment:
#   CHURN_KAFKA_CACHE            jar cache root (default: $HOME/.cache/churnwatch)
#   CHURN_KAFKA_PORT             fixed broker port (default: a free loopback port)
#   CHURN_KAFKA_CONTROLLER_PORT  fixed controller port (default: a free loopback port)
#   CHURN_KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default: 60)
#   CHURN_KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default: 30)
#   CHURN_KAFKA_HEAP_OPTS        JVM heap options (default: -Xms256m -Xmx512m)
#   CHURN_KAFKA_EXTRA_LISTENERS  more client listeners, comma separated, each named after
#                                its security protocol (e.g. SASL_SSL://127.0.0.1:9093);
#                                the PLAINTEXT one stays (the readiness check uses it)
#   CHURN_KAFKA_EXTRA_CONFIG     a file of broker properties appended to server.properties
#                                (TLS key store, SASL mechanisms, ...); its keys win
#   CHURN_KAFKA_OWNER_PID        if set, stop the broker when this process exits
#                                (lets a test session clean up even when it is killed)
#   CHURN_PYTHON                 Python used for helpers and the readiness check
#                                (default: python3); with confluent_kafka installed it
#                                checks that the broker answers a metadata request
#
# All messages except the bootstrap address printed by `start` go to stderr.

set -euo pipefail

readonly KAFKA_VERSION="3.9.1"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
SCRIPT_PATH="${SCRIPT_DIR}/$(basename "${BASH_SOURCE[0]}")"
readonly SCRIPT_PATH
readonly POM="${SCRIPT_DIR}/kafka-pom.xml"
readonly CACHE_ROOT="${CHURN_KAFKA_CACHE:-${HOME:-/tmp}/.cache/churnwatch}"
readonly KAFKA_HOME="${CACHE_ROOT}/kafka-${KAFKA_VERSION}"
readonly LIBS="${KAFKA_HOME}/libs"
readonly MARKER="${KAFKA_HOME}/.complete"
readonly LOG4J="${KAFKA_HOME}/log4j.properties"
readonly PY="${CHURN_PYTHON:-python3}"
readonly MAIN_CLASS="kafka.Kafka"

log() { printf 'kafka-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,/^$/p' "${SCRIPT_PATH}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------------------

# The marker records a hash of the pom, so editing the pom triggers a new fetch.
pom_hash() { sha256sum "${POM}" | cut -d' ' -f1; }

write_log4j() {
    # kafka.logs.dir is set per broker by `start`, so each broker logs into its own DIR.
    cat >"${LOG4J}.tmp" <<'EOF'
# Written by scripts/kafka-local.sh fetch. The broker logs to ${kafka.logs.dir}/server.log;
# startup and shutdown lines stay at INFO, chatty internals only report WARN and above.
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n

log4j.logger.kafka.Kafka$=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
log4j.logger.kafka.server.SharedServer=INFO
log4j.logger.kafka.tools.StorageTool$=INFO
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log=WARN
log4j.logger.kafka.request.logger=WARN
EOF
    mv "${LOG4J}.tmp" "${LOG4J}"
}

cmd_fetch() {
    command -v java >/dev/null 2>&1 || die "java not found; install a Java 17 runtime"
    local want
    want="$(pom_hash)"
    if [[ -f "${MARKER}" && "$(cat "${MARKER}")" == "${want}" && -f "${LOG4J}" ]]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found; install Maven to fetch the Kafka jars"
    log "fetching Apache Kafka ${KAFKA_VERSION} jars into ${LIBS}"
    mkdir -p "${KAFKA_HOME}"
    rm -f "${MARKER}"
    local tmp="${KAFKA_HOME}/libs.tmp.$$"
    rm -rf "${tmp}"
    # Run from the cache dir so Maven leaves nothing behind in the work tree.
    # Maven 3.8 prints colour resets even in batch mode; strip them.
    if ! (cd "${KAFKA_HOME}" && mvn -q -B -Dstyle.color=never -f "${POM}" \
        dependency:copy-dependencies -DoutputDirectory="${tmp}" 2>&1 \
        | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2); then
        rm -rf "${tmp}"
        die "mvn dependency:copy-dependencies failed"
    fi
    ls "${tmp}"/kafka_2.13-"${KAFKA_VERSION}".jar >/dev/null 2>&1 \
        || { rm -rf "${tmp}"; die "kafka_2.13-${KAFKA_VERSION}.jar missing after fetch"; }
    rm -rf "${LIBS}"
    mv "${tmp}" "${LIBS}"
    write_log4j
    printf '%s\n' "${want}" >"${MARKER}"
    log "fetched $(find "${LIBS}" -name '*.jar' | wc -l) jars"
}

# ---------------------------------------------------------------------------------------
# helpers for start / stop / status
# ---------------------------------------------------------------------------------------

abs_dir() {
    [[ -n "${1:-}" ]] || usage
    mkdir -p "$1"
    (cd "$1" && pwd -P)
}

# Prints the physical path of DIR when it exists; creates nothing (for stop and status).
existing_dir() {
    [[ -d "$1" ]] || return 1
    (cd "$1" && pwd -P)
}

# True when the process exists and is not a zombie (exited but not yet reaped).
pid_alive() {
    local pid="$1" state
    kill -0 "${pid}" 2>/dev/null || return 1
    state="$(awk '/^State:/ {print $2}' "/proc/${pid}/status" 2>/dev/null || true)"
    [[ -n "${state}" && "${state}" != "Z" ]]
}

# Prints the pid from DIR/kafka.pid when that process is our broker for DIR.
live_pid() {
    local dir="$1" pid
    [[ -f "${dir}/kafka.pid" ]] || return 1
    pid="$(cat "${dir}/kafka.pid" 2>/dev/null || true)"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    pid_alive "${pid}" || return 1
    # Guard against a recycled pid: the process must be our java with our config.
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null || true)"
    [[ "${cmdline}" == *"${MAIN_CLASS} ${dir}/server.properties"* ]] || return 1
    printf '%s\n' "${pid}"
}

free_ports() {
    # Prints two distinct free loopback ports. Both sockets stay bound until both
    # numbers are known, so the two cannot collide with each other.
    "${PY}" -c '
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
'
}

random_cluster_id() {
    # Same format as `kafka-storage.sh random-uuid`: 16 random bytes, url-safe base64,
    # no padding, never starting with '-' (which a command line would take for an option).
    "${PY}" -c '
import base64, os
while True:
    cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
'
}

write_properties() {
    local dir="$1" port="$2" cport="$3" extra="" protocols="" listener
    if [[ -n "${CHURN_KAFKA_EXTRA_LISTENERS:-}" ]]; then
        local -a listeners
        IFS=, read -r -a listeners <<<"${CHURN_KAFKA_EXTRA_LISTENERS}"
        for listener in "${listeners[@]}"; do
            [[ "${listener}" =~ ^(SSL|SASL_PLAINTEXT|SASL_SSL)://[^,]+:[0-9]+$ ]] \
                || die "CHURN_KAFKA_EXTRA_LISTENERS: ${listener} is not PROTOCOL://HOST:PORT" \
                       "with PROTOCOL one of SSL, SASL_PLAINTEXT, SASL_SSL"
            extra+=",${listener}"
            protocols+=",${listener%%://*}:${listener%%://*}"
        done
    fi
    cat >"${dir}/server.properties" <<EOF
# Written by scripts/kafka-local.sh start: single-node KRaft broker for local use.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${cport}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}${extra}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}${extra}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${protocols}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=${dir}/data

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0

log.retention.hours=24
log.retention.bytes=268435456
log.segment.bytes=16777216
log.retention.check.interval.ms=60000
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
    if [[ -n "${CHURN_KAFKA_EXTRA_CONFIG:-}" ]]; then
        [[ -f "${CHURN_KAFKA_EXTRA_CONFIG}" ]] \
            || die "CHURN_KAFKA_EXTRA_CONFIG: no file ${CHURN_KAFKA_EXTRA_CONFIG}"
        { printf '\n# From CHURN_KAFKA_EXTRA_CONFIG (%s)\n' "${CHURN_KAFKA_EXTRA_CONFIG}"
          cat "${CHURN_KAFKA_EXTRA_CONFIG}"; } >>"${dir}/server.properties"
    fi
}

print_log_tail() {
    local dir="$1" f
    for f in "${dir}/kafka.out" "${dir}/logs/server.log"; do
        if [[ -s "${f}" ]]; then
            log "---- last lines of ${f} ----"
            tail -n 40 "${f}" >&2 || true
        fi
    done
}

# One readiness probe. Our own log must say the server started (so the port is ours, not
# another broker's) and, when confluent_kafka is available, a metadata request must
# answer with our cluster id and at least one broker (a KRaft broker is listed once it
# is registered and unfenced). Without confluent_kafka the port must accept connections.
probe() {
    local dir="$1" bootstrap="$2" port="${2##*:}"
    grep -q "Kafka Server started" "${dir}/logs/server.log" 2>/dev/null || return 1
    if [[ "${HAVE_CK}" == 1 ]]; then
        "${PY}" - "${bootstrap}" "$(cluster_id "${dir}")" 2>/dev/null <<'EOF'
import sys

from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
metadata = admin.list_topics(timeout=3)
sys.exit(0 if metadata.brokers and metadata.cluster_id == sys.argv[2] else 1)
EOF
    else
        (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null
    fi
}

cluster_id() {
    sed -n 's/^cluster\.id=//p' "$1/data/meta.properties" 2>/dev/null
}

# ---------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------

start_once() {
    # Returns 0 when the broker is ready, 1 on failure, 10 when a picked port was taken.
    local dir="$1" port cport ports pid
    if [[ -n "${CHURN_KAFKA_PORT:-}" && -n "${CHURN_KAFKA_CONTROLLER_PORT:-}" ]]; then
        port="${CHURN_KAFKA_PORT}"
        cport="${CHURN_KAFKA_CONTROLLER_PORT}"
    else
        ports="$(free_ports)"
        port="${CHURN_KAFKA_PORT:-${ports%% *}}"
        cport="${CHURN_KAFKA_CONTROLLER_PORT:-${ports##* }}"
        if [[ "${cport}" == "${port}" ]]; then
            cport="${ports%% *}"
        fi
    fi
    local bootstrap="127.0.0.1:${port}"

    mkdir -p "${dir}/data" "${dir}/logs"
    write_properties "${dir}" "${port}" "${cport}"
    rm -f "${dir}/bootstrap" "${dir}/kafka.pid"
    # Fresh logs per start: the readiness check looks for this run's start-up line.
    if [[ -s "${dir}/logs/server.log" ]]; then
        mv -f "${dir}/logs/server.log" "${dir}/logs/server.log.1"
    fi
    : >"${dir}/kafka.out"

    local -a heap
    read -r -a heap <<<"${CHURN_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
    local -a jvm=(java "${heap[@]}"
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
        -Dlog4j.configuration="file:${LOG4J}" -Dkafka.logs.dir="${dir}/logs"
        -cp "${LIBS}/*")

    if [[ ! -f "${dir}/data/meta.properties" ]]; then
        local cid
        cid="$(random_cluster_id)"
        if ! "${jvm[@]}" kafka.tools.StorageTool format --ignore-formatted \
            -t "${cid}" -c "${dir}/server.properties" >>"${dir}/kafka.out" 2>&1; then
            log "formatting the storage in ${dir}/data failed"
            print_log_tail "${dir}"
            return 1
        fi
        echo >>"${dir}/kafka.out"  # the format tool's message has no line end
    fi

    # Detached from our stdin/stdout/stderr so a caller reading our stdout sees EOF.
    nohup "${jvm[@]}" "${MAIN_CLASS}" "${dir}/server.properties" \
        </dev/null >>"${dir}/kafka.out" 2>&1 &
    pid=$!
    printf '%s\n' "${pid}" >"${dir}/kafka.pid"
    log "started java (pid ${pid}) on ${bootstrap}, waiting up to ${START_TIMEOUT}s"

    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! pid_alive "${pid}"; then
            wait "${pid}" 2>/dev/null || true
            rm -f "${dir}/kafka.pid"
            if grep -qi "Address already in use" "${dir}/kafka.out" "${dir}/logs/server.log" \
                2>/dev/null; then
                log "port ${port} or ${cport} is already in use"
                print_log_tail "${dir}"
                return 10
            fi
            log "the broker exited during start-up"
            print_log_tail "${dir}"
            return 1
        fi
        if probe "${dir}" "${bootstrap}"; then
            printf '%s\n' "${bootstrap}" >"${dir}/bootstrap"
            return 0
        fi
        sleep 0.3
    done

    log "the broker did not answer within ${START_TIMEOUT}s"
    print_log_tail "${dir}"
    stop_pid "${dir}" "${pid}" 10
    return 1
}

start_watchdog() {
    local dir="$1" owner="$2" pid="$3"
    [[ "${owner}" =~ ^[0-9]+$ ]] || die "CHURN_KAFKA_OWNER_PID must be a pid"
    (
        trap '' HUP
        while kill -0 "${owner}" 2>/dev/null && kill -0 "${pid}" 2>/dev/null; do
            sleep 2
        done
        if kill -0 "${pid}" 2>/dev/null; then
            "${SCRIPT_PATH}" stop "${dir}"
        fi
    ) </dev/null >>"${dir}/watchdog.log" 2>&1 &
    disown $! 2>/dev/null || true
}

cmd_start() {
    local dir
    dir="$(abs_dir "${1:-}")"
    local existing
    if existing="$(live_pid "${dir}")" && [[ -s "${dir}/bootstrap" ]]; then
        log "already running (pid ${existing})"
        cat "${dir}/bootstrap"
        return 0
    fi
    command -v java >/dev/null 2>&1 || die "java not found; install a Java 17 runtime"
    cmd_fetch

    START_TIMEOUT="${CHURN_KAFKA_START_TIMEOUT:-60}"
    [[ "${START_TIMEOUT}" =~ ^[0-9]+$ ]] || die "CHURN_KAFKA_START_TIMEOUT must be whole seconds"
    HAVE_CK=0
    if "${PY}" -c 'import confluent_kafka' 2>/dev/null; then
        HAVE_CK=1
    else
        log "note: ${PY} has no confluent_kafka; readiness is checked by port and log line"
    fi

    local attempt rc=1
    for attempt in 1 2 3; do
        rc=0
        start_once "${dir}" || rc=$?
        if ((rc == 0)); then
            break
        fi
        # Retry only when ports we picked ourselves were taken in the meantime.
        if ((rc == 10)) && [[ -z "${CHURN_KAFKA_PORT:-}" ]]; then
            log "retrying with other ports (attempt $((attempt + 1)))"
            continue
        fi
        break
    done
    if ((rc != 0)); then
        # Never leave a half-started broker behind.
        local pid
        if pid="$(live_pid "${dir}")"; then
            stop_pid "${dir}" "${pid}" 10
        fi
        die "could not start Kafka in ${dir}"
    fi

    local pid
    pid="$(cat "${dir}/kafka.pid")"
    if [[ -n "${CHURN_KAFKA_OWNER_PID:-}" ]]; then
        start_watchdog "${dir}" "${CHURN_KAFKA_OWNER_PID}" "${pid}"
    fi
    log "ready after ${SECONDS}s (pid ${pid}, logs in ${dir}/logs)"
    cat "${dir}/bootstrap"
}

# ---------------------------------------------------------------------------------------
# stop / status
# ---------------------------------------------------------------------------------------

stop_pid() {
    local dir="$1" pid="$2" grace="$3"
    kill -TERM "${pid}" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while pid_alive "${pid}"; do
        if ((SECONDS >= deadline)); then
            log "pid ${pid} still running after ${grace}s, sending SIGKILL"
            kill -KILL "${pid}" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    # Reap it when it is our child; otherwise wait until the kernel has removed it.
    wait "${pid}" 2>/dev/null || true
    local until=$((SECONDS + 10))
    while pid_alive "${pid}" && ((SECONDS < until)); do
        sleep 0.1
    done
    rm -f "${dir}/kafka.pid" "${dir}/bootstrap"
}

cmd_stop() {
    local dir pid grace="${CHURN_KAFKA_STOP_TIMEOUT:-30}"
    [[ -n "${1:-}" ]] || usage
    if ! dir="$(existing_dir "$1")"; then
        log "not running (no directory $1)"
        return 0
    fi
    if pid="$(live_pid "${dir}")"; then
        log "stopping pid ${pid}"
        stop_pid "${dir}" "${pid}" "${grace}"
        if [[ -n "$(live_pid "${dir}" || true)" ]]; then
            die "pid ${pid} did not exit"
        fi
        log "stopped"
    else
        rm -f "${dir}/kafka.pid" "${dir}/bootstrap"
        log "not running"
    fi
}

cmd_status() {
    local dir pid
    [[ -n "${1:-}" ]] || usage
    if ! dir="$(existing_dir "$1")"; then
        printf 'stopped\n'
        return 3
    fi
    if pid="$(live_pid "${dir}")"; then
        printf 'running pid=%s bootstrap=%s\n' "${pid}" "$(cat "${dir}/bootstrap" 2>/dev/null || echo '?')"
        return 0
    fi
    printf 'stopped\n'
    return 3
}

main() {
    local cmd="${1:-}"
    shift || true
    case "${cmd}" in
        fetch) cmd_fetch ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        *) usage ;;
    esac
}

main "$@"

