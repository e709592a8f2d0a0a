#!/usr/bin/env bash
# A real load balancer (nginx) for the collector-replica tests and benchmark.
#
#   bash .ci/lb.sh                                  install Debian's nginx if missing (idempotent)
#   bash .ci/lb.sh run DIR LISTEN_PORT PORT...      write DIR/nginx.conf (127.0.0.1:LISTEN_PORT in front of
#                                                   the collectors on 127.0.0.1:PORT...) and run nginx on it in
#                                                   the foreground (it becomes this process: SIGTERM stops it);
#                                                   its pid file, logs and temp files stay in DIR
set -euo pipefail

log() { echo "lb: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

install_nginx() {
    if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
        return
    fi
    log "installing nginx (apt-get)"
    # Debian's postinst starts the packaged nginx on :80. A policy-rc.d that answers 101 ("action
    # forbidden") stops that: only the loopback instances the tests start ever listen. An existing
    # policy-rc.d is kept aside and put back.
    local policy=/usr/sbin/policy-rc.d saved=""
    if [ -e "$policy" ]; then
        saved="$(mktemp)"
        as_root cp -p "$policy" "$saved"
    fi
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    restore() { if [ -n "$saved" ]; then as_root mv "$saved" "$policy"; else as_root rm -f "$policy"; fi; }
    trap restore EXIT
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx >&2
    restore
    trap - EXIT
}

write_conf() {
    local dir="$1" listen="$2"
    shift 2
    # As root the workers would run as nobody, who cannot enter the private (0700) folder that holds
    # the temp files: run them as the user that owns that folder.
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    local servers=""
    for port in "$@"; do
        # max_fails=0: a dead replica is skipped per request (next upstream), never benched for
        # fail_timeout, so a restarted replica takes traffic again at once.
        servers+="        server 127.0.0.1:${port} max_fails=0;"$'\n'
    done
    cat >"$dir/nginx.conf" <<EOF
# Collector replicas behind nginx (written by .ci/lb.sh).
daemon off;
master_process on;
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    client_max_body_size 64m;      # the collector enforces its own (smaller) limits and answers 413 itself
    client_body_buffer_size 1m;    # a batch is read whole before it goes upstream, so it can be resent

    upstream collectors {
$servers        keepalive 32;              # reuse connections to the replicas (a new one per batch costs more than the batch)
        keepalive_timeout 4s;      # under the collector's --keep-alive-timeout (5 s): nginx lets go first
    }
    server {
        listen 127.0.0.1:$listen;
        location / {
            proxy_pass http://collectors;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            # A replica that refuses the connection, or dies with the request in flight, is skipped and
            # the request goes to the next one. nginx resends a POST after it reached a replica only
            # with non_idempotent; that is safe here because ingestion is idempotent: the batch carries
            # its event ids and the database's (project, id) key stores each once, so a batch the dead
            # replica had already committed is answered "duplicate" by the next one. 429, 503 and 4xx
            # answers are passed to the client, which retries (or not) as the protocol says.
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 3;
        }
    }
}
EOF
}

case "${1:-install}" in
    install) install_nginx ;;
    run)
        [ "$#" -ge 4 ] || { log "usage: lb.sh run DIR LISTEN_PORT PORT..."; exit 2; }
        dir="$(mkdir -p "$2" && cd "$2" && pwd)"
        shift 2
        install_nginx
        write_conf "$dir" "$@"
        exec "$(command -v nginx || echo /usr/sbin/nginx)" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        ;;
    *) log "usage: lb.sh [install] | lb.sh run DIR LISTEN_PORT PORT..."; exit 2 ;;
esac
