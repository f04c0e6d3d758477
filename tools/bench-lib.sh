# shellcheck shell=bash
# Shared parts of the benchmark scripts tools/bench, tools/bench-mem,
# tools/bench-dns and tools/bench-profile; sourced, never run.
#
# It installs missing Debian packages with services kept from starting and
# moves the run into a private network namespace that has only a loopback
# interface.  It makes a state directory and generates keys and zones for
# the bench domain with bin/dnsconf.  It starts and stops smtp-sink (the
# destination MX), the router, a private Postfix forwarder with postsrsd
# (the peer) and NSD.  Every process is started in the background with its PID recorded,
# and bench_stop_all stops each one by that PID: on success, on error and on
# Ctrl-C.  Every server binds 127.0.0.1 and every client connects there.
#
# The bench domain: alice, bob and carol @example.com forward to the same
# names @dest.example; dest.example has MX mx.dest.example with A 127.0.0.1,
# where smtp-sink listens; rewritten senders are SRS0=...@fwd.bench.example.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_PY=/usr/bin/python3
BENCH_CLIENT=$BENCH_ROOT/tools/bench-client.py

# Ports on 127.0.0.1.  Inside the private namespace nothing else uses them;
# with --no-netns they can be moved through the environment.
BENCH_SINK_PORT=${BENCH_SINK_PORT:-12525}
BENCH_PF_PORT=${BENCH_PF_PORT:-12526}
BENCH_ROUTER_PORT=${BENCH_ROUTER_PORT:-12528}
BENCH_NSD_PORT=${BENCH_NSD_PORT:-12553}
# The router's --resolver when it reads names from zone files: nothing
# listens here, so a query that escaped zone mode would fail, not leave.
BENCH_DEAD_PORT=${BENCH_DEAD_PORT:-12554}
BENCH_SRS_FWD_PORT=${BENCH_SRS_FWD_PORT:-12601}
BENCH_SRS_REV_PORT=${BENCH_SRS_REV_PORT:-12602}

BENCH_HOST=127.0.0.1
BENCH_FROM=bob@sender.example
BENCH_TO=alice@example.com
BENCH_DEST=alice@dest.example
BENCH_SRS_DOMAIN=fwd.bench.example
BENCH_HOSTNAME=mx.relay.example

BENCH_PIDS=()
BENCH_NAMES=()
BENCH_STATE=
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_PROG=$(basename "$0")

bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { printf '%s: %s\n' "$BENCH_PROG" "$*" >&2; exit 1; }

# bench_install PACKAGE...: install the Debian packages that are missing.
# A temporary /usr/sbin/policy-rc.d (unless one exists) keeps the packages
# from starting their system services.  A Postfix master, postsrsd or NSD
# that appears during the install anyway is stopped by its PID; ones that
# ran before are left alone.
bench_install() {
	local missing=() pkg status before after pid policy made_policy=0
	for pkg in "$@"; do
		status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
		[ "$status" = "install ok installed" ] || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0

	bench_log "installing ${missing[*]}"
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# Temporary: keeps services from starting while %s installs.\nexit 101\n' \
		    "$BENCH_PROG" >"$policy"
		chmod 0755 "$policy"
		made_policy=1
	fi

	before=$(bench_system_daemons)
	if ! { timeout 600 apt-get -o DPkg::Lock::Timeout=300 install -y -q \
	    --no-install-recommends "${missing[@]}" ||
	    { timeout 300 apt-get -q update &&
	    timeout 600 apt-get -o DPkg::Lock::Timeout=300 install -y -q \
	    --no-install-recommends "${missing[@]}"; }; } \
	    >"/tmp/$BENCH_PROG-apt.log" 2>&1; then
		[ $made_policy = 1 ] && rm -f "$policy"
		tail -n 20 "/tmp/$BENCH_PROG-apt.log" >&2
		bench_die "apt-get failed to install ${missing[*]} (log: /tmp/$BENCH_PROG-apt.log)"
	fi
	[ $made_policy = 1 ] && rm -f "$policy"

	after=$(bench_system_daemons)
	for pid in $after; do
		case " $before " in *" $pid "*) continue ;; esac
		bench_log "the install started a system daemon (pid $pid): stopping it"
		if [ "$(readlink "/proc/$pid/exe")" = /usr/lib/postfix/sbin/master ]; then
			postfix -c /etc/postfix stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
		else
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
}

# bench_system_daemons: PIDs of running daemons that use the system's
# configuration: a Postfix master without MAIL_CONFIG (or with
# /etc/postfix), an NSD without -c (or with a config under /etc/nsd) and a
# postsrsd with /etc/postsrsd.secret.  Private instances, such as the ones
# tests start, are not listed.
bench_system_daemons() {
	local p exe args config
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		args=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		case $exe in
		/usr/lib/postfix/sbin/master)
			config=$(tr '\0' '\n' <"$p/environ" 2>/dev/null | sed -n 's/^MAIL_CONFIG=//p')
			[ -z "$config" ] || [ "$config" = /etc/postfix ] || continue
			;;
		/usr/sbin/nsd)
			if [[ " $args " == *" -c "* && " $args " != *" -c /etc/nsd/"* ]]; then
				continue
			fi
			;;
		/usr/sbin/postsrsd)
			[[ "$args" == *"/etc/postsrsd"* ]] || continue
			;;
		*) continue ;;
		esac
		echo "${p#/proc/}"
	done
}

# bench_enter_netns ARGS...: run this script again inside a new network
# namespace with only "lo" (up), so no packet can leave the machine.  The
# script runs in place (exec).  Does nothing with BENCH_NETNS=0 or when
# already inside; when unshare is not possible it warns and goes on
# without, and every address used is 127.0.0.1 all the same.
bench_enter_netns() {
	if [ "${BENCH_NETNS:-1}" = 0 ]; then
		bench_log "no private network namespace (--no-netns): servers bind 127.0.0.1 only"
		return 0
	fi
	if [ "${BENCH_IN_NETNS:-0}" = 1 ]; then
		ip link set lo up || bench_die "cannot bring lo up in the network namespace"
		bench_log "in a private network namespace: $(ip -br addr | tr -s ' ' | tr '\n' ';')"
		return 0
	fi
	if ! unshare --net true 2>/dev/null; then
		bench_log "WARNING: unshare --net failed here; running in the host namespace on 127.0.0.1"
		return 0
	fi
	export BENCH_IN_NETNS=1
	exec unshare --net -- "$0" "$@"
}

# bench_init_state: make the state directory (BENCH_STATE_DIR or a new
# /tmp/router-bench.XXXXXX), copy the router and dnsconf binaries into it
# so a rebuild during the run cannot swap them, and set the traps that stop
# everything on exit, error and Ctrl-C.
bench_init_state() {
	local router=${ROUTER:-$BENCH_ROOT/bin/router}
	local dnsconf=${DNSCONF:-$BENCH_ROOT/bin/dnsconf}
	if [ ! -x "$router" ] || [ ! -x "$dnsconf" ]; then
		bench_log "building the router (make)"
		make -C "$BENCH_ROOT" -s -j"$(nproc)" all >&2 || bench_die "make failed"
	fi
	BENCH_STATE=${BENCH_STATE_DIR:-$(mktemp -d /tmp/router-bench.XXXXXX)}
	mkdir -p "$BENCH_STATE/bin"
	chmod 0755 "$BENCH_STATE"
	cp "$router" "$BENCH_STATE/bin/router"
	cp "$dnsconf" "$BENCH_STATE/bin/dnsconf"
	BENCH_ROUTER_BIN=$BENCH_STATE/bin/router
	BENCH_DNSCONF_BIN=$BENCH_STATE/bin/dnsconf
	# The traps may run inside a command whose output is redirected:
	# keep the script's own stdout and stderr for bench_on_exit.
	exec 8>&1 9>&2
	trap bench_on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	bench_log "state directory $BENCH_STATE"
}

bench_on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	exec 1>&8 2>&9
	bench_stop_all
	if [ "$BENCH_KEEP" = 1 ] || [ $rc -ne 0 ]; then
		bench_log "kept $BENCH_STATE (logs and results)"
	elif [ -n "$BENCH_STATE" ]; then
		rm -rf "$BENCH_STATE"
	fi
	exit $rc
}

# bench_track NAME PID: remember a process to stop at the end.
bench_track() {
	case $2 in
	'' | *[!0-9]*) bench_die "internal error: no PID for $1" ;;
	esac
	BENCH_NAMES+=("$1")
	BENCH_PIDS+=("$2")
}

# bench_alive PID: true while PID exists and is not a zombie.
bench_alive() {
	local state
	case $1 in
	'' | *[!0-9]*) return 1 ;;
	esac
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# bench_descendants PID: PIDs of the live descendants of PID.
bench_descendants() {
	ps -eo pid=,ppid= | awk -v root="$1" '
	    { parent[$1] = $2 }
	    END {
		for (p in parent) {
			q = parent[p]
			for (n = 0; q > 1 && n < 64; n++) {
				if (q == root) { print p; break }
				q = parent[q]
			}
		}
	    }'
}

# bench_stop_pid NAME PID: TERM, wait up to 10 s, then KILL; then KILL any
# descendant that outlived it.  Reaps PID when it is a child of this shell.
bench_stop_pid() {
	local name=$1 pid=$2 kids k i
	bench_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
	kids=$(bench_descendants "$pid")
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 100); do
		bench_alive "$pid" || break
		sleep 0.1
	done
	if bench_alive "$pid"; then
		bench_log "$name (pid $pid) ignored TERM for 10 s: KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null
	for k in $kids; do
		for i in $(seq 30); do
			bench_alive "$k" || break
			sleep 0.1
		done
		bench_alive "$k" && kill -KILL "$k" 2>/dev/null
	done
	return 0
}

# bench_stop_all: stop every tracked process, the last started first.
bench_stop_all() {
	local i
	for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
		case ${BENCH_NAMES[$i]} in
		postfix) bench_stop_postfix "${BENCH_PIDS[$i]}" ;;
		*) bench_stop_pid "${BENCH_NAMES[$i]}" "${BENCH_PIDS[$i]}" ;;
		esac
	done
	BENCH_PIDS=()
	BENCH_NAMES=()
}

# bench_untrack PID: stop PID now and forget it.
bench_untrack() {
	local i
	for i in "${!BENCH_PIDS[@]}"; do
		[ "${BENCH_PIDS[$i]}" = "$1" ] || continue
		bench_stop_pid "${BENCH_NAMES[$i]}" "$1"
		unset "BENCH_PIDS[$i]" "BENCH_NAMES[$i]"
	done
	BENCH_PIDS=("${BENCH_PIDS[@]}")
	BENCH_NAMES=("${BENCH_NAMES[@]}")
}

# bench_wait_port PORT PID [SECONDS]: wait until 127.0.0.1:PORT accepts a
# connection; fails early when PID has exited.
bench_wait_port() {
	local port=$1 pid=$2 limit=${3:-10} i
	for ((i = 0; i < limit * 10; i++)); do
		if [ -n "$pid" ] && ! bench_alive "$pid"; then
			return 1
		fi
		if (exec 3<>"/dev/tcp/$BENCH_HOST/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

bench_port_free() {
	! (exec 3<>"/dev/tcp/$BENCH_HOST/$1") 2>/dev/null
}

# ------------------------------------------------------------ keys, zones

# bench_soa ORIGIN: the head of a zone file (SOA and NS records).
bench_soa() {
	printf '$ORIGIN %s.\n$TTL 3600\n' "$1"
	printf '@\tIN SOA\tns.relay.example. hostmaster.relay.example. ( 1 3600 600 86400 300 )\n'
	printf '@\tIN NS\tns.relay.example.\n'
}

# bench_make_zones: fresh keys (dnsconf keygen, relay-keygen, an SRS secret)
# in $BENCH_STATE/keys and the zones in $BENCH_STATE/zones: example.com
# (zones/customer.zone.in plus the signed rules), dest.example (the sink),
# relay.example, bench.example (the SRS domain) and sender.example.
bench_make_zones() {
	local k=$BENCH_STATE/keys z=$BENCH_STATE/zones
	mkdir -p "$k" "$z"
	"$BENCH_DNSCONF_BIN" keygen --domain example.com --out "$k" >/dev/null ||
	    bench_die "dnsconf keygen failed"
	"$BENCH_DNSCONF_BIN" relay-keygen --out "$k" >/dev/null ||
	    bench_die "dnsconf relay-keygen failed"
	head -c 32 /dev/urandom | base64 >"$k/srs-secret"
	chmod 0600 "$k/srs-secret"

	cat >"$BENCH_STATE/example.com.rules" <<-EOF
	alice@example.com forward alice@dest.example
	bob@example.com forward bob@dest.example
	carol@example.com forward carol@dest.example
	EOF
	{
		sed -e 's/@DOMAIN@/example.com/g' -e 's/@SERIAL@/1/g' \
		    "$BENCH_ROOT/zones/customer.zone.in"
		"$BENCH_DNSCONF_BIN" sign --domain example.com --key "$k/example.com.key" \
		    --relay-pub "$k/relay.pub" --rules "$BENCH_STATE/example.com.rules" \
		    --mx "$BENCH_HOSTNAME" || bench_die "dnsconf sign failed"
	} >"$z/example.com.zone"

	{ bench_soa dest.example; printf '@\tIN MX\t10 mx.dest.example.\nmx\tIN A\t127.0.0.1\n'; } \
	    >"$z/dest.example.zone"
	{ bench_soa relay.example; printf 'ns\tIN A\t127.0.0.1\nmx\tIN A\t127.0.0.1\n'; } \
	    >"$z/relay.example.zone"
	{
		bench_soa bench.example
		printf 'fwd\tIN MX\t10 mx.relay.example.\n'
		printf 'fwd\tIN TXT\t"v=spf1 ip4:127.0.0.0/8 -all"\n'
	} >"$z/bench.example.zone"
	{ bench_soa sender.example; printf '@\tIN TXT\t"v=spf1 ip4:127.0.0.0/8 -all"\n'; } \
	    >"$z/sender.example.zone"
}

# bench_zone_names: the zones bench_make_zones wrote, one per line.
bench_zone_names() {
	local f
	for f in "$BENCH_STATE"/zones/*.zone; do
		basename "$f" .zone
	done
}

# ------------------------------------------------------------ smtp-sink

BENCH_SINK_PID=

# bench_start_sink [--dump]: smtp-sink on 127.0.0.1:$BENCH_SINK_PORT with
# running counters in $BENCH_STATE/sink/count.out; --dump also appends each
# message with its envelope to sink/messages (slow; for checking one
# message).  It replies 250 to every command.
bench_start_sink() {
	local d=$BENCH_STATE/sink args=(-c -C -F -u postfix -m 2048 -h mx.dest.example)
	mkdir -p "$d"
	: >"$d/count.out"
	if [ "${1:-}" = --dump ]; then
		rm -f "$d/messages"
		chown postfix "$d"
		args+=(-D "$d/messages")
	fi
	bench_port_free "$BENCH_SINK_PORT" || bench_die "127.0.0.1:$BENCH_SINK_PORT is in use"
	smtp-sink "${args[@]}" "$BENCH_HOST:$BENCH_SINK_PORT" 1024 \
	    >"$d/count.out" 2>>"$d/sink.err" </dev/null &
	BENCH_SINK_PID=$!
	bench_track smtp-sink "$BENCH_SINK_PID"
	bench_wait_port "$BENCH_SINK_PORT" "$BENCH_SINK_PID" 10 ||
	    { cat "$d/sink.err" >&2; bench_die "smtp-sink did not start"; }
}

bench_stop_sink() {
	[ -n "$BENCH_SINK_PID" ] && bench_untrack "$BENCH_SINK_PID"
	BENCH_SINK_PID=
}

# bench_sink_count: messages the sink has received since it started.  The
# counters are "sess=N quit=N mesg=N" records each ended by CR; the last
# complete record counts.
bench_sink_count() {
	tail -c 300 "$BENCH_STATE/sink/count.out" 2>/dev/null |
	    perl -0777 -ne 'my @r = /mesg=(\d+)\r/g; print((@r ? $r[-1] : 0), "\n")'
}

# bench_wait_sink COUNT SECONDS: wait until the sink has counted COUNT.
bench_wait_sink() {
	local want=$1 limit=$2 start=$SECONDS
	while [ "$(bench_sink_count)" -lt "$want" ]; do
		[ $((SECONDS - start)) -ge "$limit" ] && return 1
		sleep 0.02
	done
}

# ------------------------------------------------------------ router

BENCH_ROUTER_PID=

# bench_start_router MODE [ROUTER ARGS...]: start the router on
# 127.0.0.1:$BENCH_ROUTER_PORT.  MODE "zones" resolves names from the zone
# files (and gives a resolver where nothing listens); MODE "nsd" queries
# NSD on 127.0.0.1:$BENCH_NSD_PORT.  BENCH_ROUTER_WRAPPER (e.g. a valgrind
# command line) runs in front of the binary.  Log: $BENCH_STATE/router.log.
bench_start_router() {
	local mode=$1 z args
	shift
	args=(--listen "$BENCH_HOST:$BENCH_ROUTER_PORT" --hostname "$BENCH_HOSTNAME"
	    --relay-key "$BENCH_STATE/keys/relay.key" --srs-domain "$BENCH_SRS_DOMAIN"
	    --srs-secret "$BENCH_STATE/keys/srs-secret" --smtp-port "$BENCH_SINK_PORT"
	    --shutdown-timeout 5)
	if [ "$mode" = zones ]; then
		args+=(--resolver "$BENCH_HOST:$BENCH_DEAD_PORT")
		for z in "$BENCH_STATE"/zones/*.zone; do
			args+=(--zone "$z")
		done
	else
		args+=(--resolver "$BENCH_HOST:$BENCH_NSD_PORT")
	fi
	bench_port_free "$BENCH_ROUTER_PORT" || bench_die "127.0.0.1:$BENCH_ROUTER_PORT is in use"
	# shellcheck disable=SC2086
	${BENCH_ROUTER_WRAPPER:-} "$BENCH_ROUTER_BIN" "${args[@]}" "$@" \
	    >>"$BENCH_STATE/router.log" 2>&1 </dev/null &
	BENCH_ROUTER_PID=$!
	bench_track router "$BENCH_ROUTER_PID"
	bench_wait_port "$BENCH_ROUTER_PORT" "$BENCH_ROUTER_PID" "${BENCH_ROUTER_START_S:-10}" ||
	    { tail -n 20 "$BENCH_STATE/router.log" >&2; bench_die "the router did not start"; }
	echo "${BENCH_ROUTER_WRAPPER:-} $BENCH_ROUTER_BIN ${args[*]} $*" >"$BENCH_STATE/router.cmd"
}

bench_stop_router() {
	[ -n "$BENCH_ROUTER_PID" ] && bench_untrack "$BENCH_ROUTER_PID"
	BENCH_ROUTER_PID=
}

# bench_router_workers: PIDs of the worker processes (the router itself
# when it runs with --workers 1), one per line.
bench_router_workers() {
	local kids
	kids=$(bench_descendants "$BENCH_ROUTER_PID")
	if [ -n "$kids" ]; then echo "$kids"; else echo "$BENCH_ROUTER_PID"; fi
}

# ------------------------------------------------------------ CPU time

# bench_cpu_ticks PID...: clock ticks of user and system time used by the
# given processes and all their descendants, including children that have
# exited and been reaped (their parent's cutime and cstime).
bench_cpu_ticks() {
	[ $# -gt 0 ] || { echo 0; return; }
	awk -v roots="$*" '
	    BEGIN {
		n = split(roots, r, " ")
		for (i = 1; i <= n; i++) want[r[i]] = 1
		while (("ls /proc" | getline d) > 0)
			if (d ~ /^[0-9]+$/) pids[d] = 1
		close("ls /proc")
		for (p in pids) {
			f = "/proc/" p "/stat"
			if ((getline line < f) > 0) {
				sub(/^.*\) /, "", line)
				split(line, a, " ")
				ppid[p] = a[2]
				t[p] = a[12] + a[13] + a[14] + a[15]
			}
			close(f)
		}
		total = 0
		for (p in t) {
			q = p
			for (hops = 0; q > 1 && hops < 64; hops++) {
				if (q in want) { total += t[p]; break }
				q = ppid[q]
			}
		}
		print total
	    }'
}

# ------------------------------------------------------------ Postfix

BENCH_PF_MASTER=
BENCH_PF_SRS_PID=

# bench_start_postfix: a private Postfix instance forwarding example.com
# through postsrsd, with config, queue, data and log under $BENCH_STATE/pf.
# Nothing in /etc/postfix or /var/spool/postfix is used or changed.
bench_start_postfix() {
	local d=$BENCH_STATE/pf i
	mkdir -p "$d/etc" "$d/data" "$d/log" "$d/srs" "$d/queue"
	chown postfix "$d/data"
	bench_port_free "$BENCH_PF_PORT" || bench_die "127.0.0.1:$BENCH_PF_PORT is in use"
	bench_write_postfix_config "$d"
	bench_start_postsrsd "$d/srs"
	# "postfix check" creates the queue directories with their owners.
	postfix -c "$d/etc" check 2>"$d/log/check.err" ||
	    { cat "$d/log/check.err" "$d/log/maillog" >&2; bench_die "postfix check failed"; }
	postfix -c "$d/etc" start 2>"$d/log/start.err" ||
	    { cat "$d/log/start.err" "$d/log/maillog" >&2; bench_die "postfix start failed"; }
	for i in $(seq 100); do
		BENCH_PF_MASTER=$(tr -dc '0-9' <"$d/queue/pid/master.pid" 2>/dev/null)
		[ -n "$BENCH_PF_MASTER" ] && break
		sleep 0.05
	done
	[ -n "$BENCH_PF_MASTER" ] || bench_die "postfix wrote no master.pid"
	bench_track postfix "$BENCH_PF_MASTER"
	bench_wait_port "$BENCH_PF_PORT" "$BENCH_PF_MASTER" 20 ||
	    { tail -n 20 "$d/log/maillog" >&2; bench_die "postfix did not start"; }
}

# bench_start_postsrsd DIR: postsrsd 1.x on 127.0.0.1, forward table on
# $BENCH_SRS_FWD_PORT and reverse table on $BENCH_SRS_REV_PORT.
bench_start_postsrsd() {
	local d=$1
	head -c 32 /dev/urandom | base64 >"$d/secret"
	chmod 0600 "$d/secret"
	bench_port_free "$BENCH_SRS_FWD_PORT" || bench_die "127.0.0.1:$BENCH_SRS_FWD_PORT is in use"
	postsrsd -4 -s "$d/secret" -d "$BENCH_SRS_DOMAIN" -l "$BENCH_HOST" \
	    -f "$BENCH_SRS_FWD_PORT" -r "$BENCH_SRS_REV_PORT" -u postsrsd -t 300 \
	    -p "$d/postsrsd.pid" -D 2>"$d/postsrsd.err" ||
	    { cat "$d/postsrsd.err" >&2; bench_die "postsrsd did not start"; }
	# The daemon writes its pid file after it forks: wait for it.
	local i
	for i in $(seq 100); do
		BENCH_PF_SRS_PID=$(tr -dc '0-9' <"$d/postsrsd.pid" 2>/dev/null)
		[ -n "$BENCH_PF_SRS_PID" ] && break
		sleep 0.05
	done
	[ -n "$BENCH_PF_SRS_PID" ] || bench_die "postsrsd wrote no pid file"
	bench_track postsrsd "$BENCH_PF_SRS_PID"
	bench_wait_port "$BENCH_SRS_FWD_PORT" "$BENCH_PF_SRS_PID" 10 || bench_die "postsrsd did not listen"
}

# bench_stop_postfix MASTER_PID: "postfix stop", then the master by PID.
bench_stop_postfix() {
	local i
	postfix -c "$BENCH_STATE/pf/etc" stop >/dev/null 2>&1 || true
	for i in $(seq 100); do
		bench_alive "$1" || return 0
		sleep 0.1
	done
	bench_stop_pid postfix "$1"
}

# bench_write_postfix_config DIR: main.cf and master.cf of the peer.  It
# forwards alice, bob and carol @example.com to @dest.example
# (virtual_alias_maps), sends dest.example to the sink by a numeric next
# hop, rewrites senders with SRS through postsrsd, does no DNS at all, and
# cannot deliver anywhere else (default_transport = error).  Everything
# else is at Postfix's defaults: a queue on disk with fsync before "250".
bench_write_postfix_config() {
	local d=$1 e=$1/etc
	cat >"$e/main.cf" <<-EOF
	# Private benchmark instance written by tools/bench-lib.sh.
	compatibility_level = 3.6
	queue_directory = $d/queue
	data_directory = $d/data
	daemon_directory = /usr/lib/postfix/sbin
	command_directory = /usr/sbin
	meta_directory = /etc/postfix
	shlib_directory = /usr/lib/postfix
	mail_owner = postfix
	setgid_group = postdrop
	syslog_name = router-bench-postfix
	maillog_file = $d/log/maillog
	maillog_file_prefixes = $BENCH_STATE

	myhostname = $BENCH_SRS_DOMAIN
	mydomain = bench.example
	myorigin = \$myhostname
	mydestination =
	local_recipient_maps =
	alias_maps =
	alias_database =
	relay_domains =
	relayhost =
	inet_interfaces = $BENCH_HOST
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	biff = no
	append_dot_mydomain = no

	smtpd_peername_lookup = no
	smtp_dns_support_level = disabled
	smtp_host_lookup = native
	default_transport = error:no delivery outside the benchmark domains
	relay_transport = \$default_transport

	virtual_alias_domains = example.com
	virtual_alias_maps = texthash:$e/virtual
	transport_maps = texthash:$e/transport
	smtpd_relay_restrictions = reject_unauth_destination
	smtpd_recipient_restrictions =
	smtpd_reject_unlisted_recipient = yes

	sender_canonical_maps = tcp:$BENCH_HOST:$BENCH_SRS_FWD_PORT
	sender_canonical_classes = envelope_sender
	recipient_canonical_maps = tcp:$BENCH_HOST:$BENCH_SRS_REV_PORT
	recipient_canonical_classes = envelope_recipient, header_recipient
	EOF
	cat >"$e/virtual" <<-EOF
	alice@example.com alice@dest.example
	bob@example.com bob@dest.example
	carol@example.com carol@dest.example
	EOF
	echo "dest.example smtp:[$BENCH_HOST]:$BENCH_SINK_PORT" >"$e/transport"
	# No chroot: the instance lives under /tmp with no jail to populate.
	cat >"$e/master.cf" <<-EOF
	$BENCH_HOST:$BENCH_PF_PORT inet n - n - - smtpd
	pickup unix n - n 60 1 pickup
	cleanup unix n - n - 0 cleanup
	qmgr unix n - n 300 1 qmgr
	rewrite unix - - n - - trivial-rewrite
	bounce unix - - n - 0 bounce
	defer unix - - n - 0 bounce
	trace unix - - n - 0 bounce
	verify unix - - n - 1 verify
	flush unix n - n 1000? 0 flush
	proxymap unix - - n - - proxymap
	smtp unix - - n - - smtp
	relay unix - - n - - smtp
	showq unix n - n - - showq
	error unix - - n - - error
	retry unix - - n - - error
	discard unix - - n - - discard
	anvil unix - - n - 1 anvil
	scache unix - - n - 1 scache
	postlog unix-dgram n - n - 1 postlogd
	EOF
}

# ------------------------------------------------------------ NSD

BENCH_NSD_PID=

# bench_start_nsd: NSD serving the bench zones on 127.0.0.1:$BENCH_NSD_PORT,
# with remote control on a local socket for "nsd-control stats_noreset".
bench_start_nsd() {
	local d=$BENCH_STATE/nsd zone
	mkdir -p "$d"
	{
		cat <<-EOF
		server:
		 ip-address: $BENCH_HOST@$BENCH_NSD_PORT
		 do-ip4: yes
		 do-ip6: no
		 username: ""
		 chroot: ""
		 zonesdir: "$BENCH_STATE/zones"
		 database: ""
		 zonelistfile: "$d/zone.list"
		 xfrdfile: "$d/xfrd.state"
		 xfrdir: "$d"
		 pidfile: "$d/nsd.pid"
		 server-count: 1
		 verbosity: 1
		 reuseport: no
		remote-control:
		 control-enable: yes
		 control-interface: $d/nsd.ctl
		EOF
		for zone in $(bench_zone_names); do
			printf 'zone:\n name: %s\n zonefile: %s.zone\n' "$zone" "$zone"
		done
	} >"$d/nsd.conf"
	nsd-checkconf "$d/nsd.conf" || bench_die "nsd-checkconf rejected $d/nsd.conf"

	nsd -d -c "$d/nsd.conf" >"$d/nsd.log" 2>&1 </dev/null &
	BENCH_NSD_PID=$!
	bench_track nsd "$BENCH_NSD_PID"
	local i
	for i in $(seq 100); do
		bench_alive "$BENCH_NSD_PID" || break
		bench_nsd_stat num.queries >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$d/nsd.log" >&2
	bench_die "nsd did not start"
}

# bench_nsd_stat NAME: one counter of "nsd-control stats_noreset".
bench_nsd_stat() {
	nsd-control -c "$BENCH_STATE/nsd/nsd.conf" stats_noreset 2>/dev/null |
	    awk -F= -v k="$1" '$1 == k { print $2; found = 1 } END { exit !found }'
}

# ------------------------------------------------------------ misc

# bench_machine: one line describing this machine.
bench_machine() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	printf 'nproc=%s cpu="%s" memory=%s kernel=%s' "$(nproc)" "$cpu" "$mem" "$(uname -r)"
}

# bench_revision: the commit of the tree the router was built from, or
# the binary's path when ROUTER names another one.
bench_revision() {
	local rev
	if [ -n "${ROUTER:-}" ]; then
		echo "$ROUTER"
		return
	fi
	rev=$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null) || rev=unknown
	if [ -n "$(git -C "$BENCH_ROOT" status --porcelain -- router 2>/dev/null)" ]; then
		rev="$rev+local-changes"
	fi
	echo "$rev"
}
