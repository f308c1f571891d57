#!/usr/bin/env bash
# Wire every running Ollama container on this host into the gateway: OLLAMA_BACKENDS in .env.
#
#   scripts/wire-multi-backend.sh [--dry-run]
#
# Use it after `docker compose up -d` and after starting more Ollama containers on this host,
# e.g.  docker run -d --name ollama-gpu2 --gpus device=1 -v ollama-gpu2:/root/.ollama \
#         ollama/ollama:0.32.15            (no -p: only the gateway is to reach it)
# A container whose Ollama checks a token (OLLAMA_AUTH=1) gets its OLLAMA_AUTH_TOKEN as the
# backend's token; the stock server checks none.
# It finds each running Ollama container (image ollama/ollama), gives it a network it shares with
# the gateway (attaching it to the gateway's proxy network when there is none), takes its token
# from OLLAMA_AUTH / OLLAMA_AUTH_TOKEN, writes OLLAMA_BACKENDS (the embedded Ollama, on an
# *internal* network, first; then the others in the order `docker ps` lists them), recreates the
# gateway, waits for /healthz and shows probe-ollama and list-backends. Tokens never appear in
# what it prints. .env is replaced atomically and only when everything before succeeded; if the
# recreated gateway fails, the previous .env is put back. Running it again changes nothing.
#
# Environment: WIRE_PROJECT_DIR  the directory with docker-compose.yml and .env (default: the
#                                checkout this script is in)
#              WIRE_NETWORK      network to attach containers to (default: the gateway's *proxy*)
#              WIRE_SERVICE      the gateway's compose service (default: gateway)
#              WIRE_HEALTH_TIMEOUT  seconds to wait for /healthz (default: 90)
set -euo pipefail

# shellcheck disable=SC2016 # a Go template for docker inspect, not shell
readonly NETS_FMT='{{range $name, $_ := .NetworkSettings.Networks}}{{println $name}}{{end}}'
readonly ENV_FMT='{{range .Config.Env}}{{println .}}{{end}}'
readonly HEALTH_PY='import os, urllib.request as u
u.urlopen("http://127.0.0.1:%s/healthz" % os.environ.get("GATEWAY_PORT", "8080"), timeout=3)'

TOKENS=()
TMP_FILES=()

# Print the arguments, one line, with every known token replaced by ***.
redact() {
	local text="$*" token
	for token in ${TOKENS[@]+"${TOKENS[@]}"}; do
		[[ -n $token ]] && text=${text//"$token"/***}
	done
	printf '%s\n' "$text"
}
say() { redact "$@"; }
die() {
	redact "error: $*" >&2
	exit 1
}
cleanup() {
	local f
	for f in ${TMP_FILES[@]+"${TMP_FILES[@]}"}; do rm -f -- "$f"; done
}
trap cleanup EXIT

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

dry_run=0
for arg in "$@"; do
	case $arg in
	--dry-run) dry_run=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument '$arg' (usage: $0 [--dry-run])" ;;
	esac
done

# ---- preconditions -------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 ||
	die "docker is not on PATH: install Docker Engine with its compose plugin, then run this again"
project_dir=${WIRE_PROJECT_DIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
cd -- "$project_dir" || die "cannot enter $project_dir"
[[ -f .env ]] ||
	die "no .env in $project_dir: create it with 'cp .env.example .env', set GATEWAY_DOMAIN and POSTGRES_PASSWORD in it, and start the stack with 'docker compose up -d'"
service=${WIRE_SERVICE:-gateway}
health_timeout=${WIRE_HEALTH_TIMEOUT:-90}
[[ $health_timeout =~ ^[0-9]+$ ]] || die "WIRE_HEALTH_TIMEOUT=$health_timeout is not a number of seconds"

out=$(docker compose version 2>&1) ||
	die "'docker compose' does not work ($out): install Docker's compose plugin"
out=$(docker compose ps -q "$service" 2>&1) || die "docker compose ps failed: $out"
gateway_id=${out%%$'\n'*}
[[ -n $gateway_id ]] ||
	die "the $service container is not running: start the stack with 'docker compose up -d' in $project_dir"
out=$(docker inspect --format '{{.State.Running}}' "$gateway_id" 2>&1) || die "docker inspect failed: $out"
[[ $out == true ]] || die "the $service container ($gateway_id) is not running: docker compose up -d"
out=$(docker inspect --format "$NETS_FMT" "$gateway_id" 2>&1) || die "docker inspect failed: $out"
mapfile -t gateway_nets <<<"$out"

attach_net=${WIRE_NETWORK:-}
if [[ -z $attach_net ]]; then
	for net in "${gateway_nets[@]}"; do
		[[ $net == *proxy* ]] && attach_net=$net && break
	done
fi
[[ -n $attach_net ]] ||
	die "the $service container is on no *proxy* network (it is on: ${gateway_nets[*]}); name the network to attach Ollama containers to with WIRE_NETWORK=..."
[[ $attach_net != *internal* ]] ||
	die "WIRE_NETWORK=$attach_net: a network named *internal* marks the embedded Ollama; attach the others to another one"

on_gateway_net() {
	local net
	for net in "${gateway_nets[@]}"; do [[ $net == "$1" ]] && return 0; done
	return 1
}

# ---- discovery -----------------------------------------------------------------------------
# `ancestor=ollama/ollama` alone means ollama/ollama:latest to Docker: a container of a pinned tag
# (ollama/ollama:0.32.15) is found only through its own tag, so ask for every local tag.
out=$(docker images --format '{{.Repository}}:{{.Tag}}' ollama/ollama 2>&1) || die "docker images failed: $out"
filters=(--filter ancestor=ollama/ollama)
while IFS= read -r ref; do
	[[ -n $ref && $ref != *'<none>'* ]] && filters+=(--filter "ancestor=$ref")
done <<<"$out"
out=$(docker ps "${filters[@]}" --format '{{.ID}}' 2>&1) || die "docker ps failed: $out"
mapfile -t ids < <(printf '%s\n' "$out" | awk 'NF && !seen[$0]++')
((${#ids[@]} > 0)) || die "no running Ollama container (image ollama/ollama) on this host: start one, then run this again"

emb_entries=() ext_entries=() emb_names=() ext_names=() to_attach=() problems=()
for id in "${ids[@]}"; do
	out=$(docker inspect --format '{{.Name}} {{.Config.Image}}' "$id" 2>&1) ||
		die "docker inspect $id failed: $out; .env not changed"
	name=${out%% *} image=${out#* }
	name=${name#/}
	out=$(docker inspect --format "$NETS_FMT" "$id" 2>&1) || die "docker inspect $name failed: $out; .env not changed"
	mapfile -t nets <<<"$out"
	out=$(docker inspect --format "$ENV_FMT" "$id" 2>&1) || die "docker inspect $name failed: $out; .env not changed"
	auth='' token='' host=''
	while IFS= read -r line; do
		case $line in
		OLLAMA_AUTH=*) auth=${line#*=} ;;
		OLLAMA_AUTH_TOKEN=*) token=${line#*=} ;;
		OLLAMA_HOST=*) host=${line#*=} ;;
		esac
	done <<<"$out"
	[[ -n $token ]] && TOKENS+=("$token")

	case ${auth,,} in
	1 | true | yes | on) auth_on=1 ;;
	*) auth_on=0 ;;
	esac
	if ((auth_on)) && [[ -z $token ]]; then
		problems+=("Ollama container '$name' has OLLAMA_AUTH=$auth but OLLAMA_AUTH_TOKEN is empty, so the gateway has no token to send it. Fix: recreate it with a token, e.g.
    docker rm -f $name
    docker run -d --name $name ... -e OLLAMA_AUTH=1 -e OLLAMA_AUTH_TOKEN=\"\$(openssl rand -hex 32)\" $image
  (the same options as before, plus the token), or start it with -e OLLAMA_AUTH=0 if nothing but the gateway can reach it; then run this script again.")
		continue
	fi
	if [[ -n $token && $token == *[!A-Za-z0-9._~+/=:@%,-]* ]]; then
		problems+=("the OLLAMA_AUTH_TOKEN of '$name' holds characters other than letters, digits and ._~+/=:@%,- (quotes, spaces, \$ or \\ cannot go into .env safely). Fix: give it a token such as \$(openssl rand -hex 32) and run this script again.")
		continue
	fi

	embedded=0 shared=''
	for net in "${nets[@]}"; do
		[[ $net == *internal* ]] && embedded=1
	done
	for net in "${nets[@]}"; do # a shared *internal* network first, then any shared one
		[[ $net == *internal* ]] && on_gateway_net "$net" && shared=$net && break
	done
	if [[ -z $shared ]]; then
		for net in "${nets[@]}"; do
			[[ -n $net ]] && on_gateway_net "$net" && shared=$net && break
		done
	fi
	[[ -z $shared ]] && to_attach+=("$id $name")

	port=11434
	hostport=${host#*://}
	hostport=${hostport%%/*}
	[[ $hostport =~ :([0-9]+)$ ]] && port=${BASH_REMATCH[1]}
	entry="{\"name\":\"$name\",\"url\":\"http://$name:$port\""
	[[ -n $token ]] && entry+=",\"token\":\"$token\""
	entry+='}'
	if ((embedded)); then
		emb_entries+=("$entry") emb_names+=("$name")
	else
		ext_entries+=("$entry") ext_names+=("$name")
	fi
done

if ((${#problems[@]} > 0)); then
	for p in "${problems[@]}"; do redact "error: $p" >&2; done
	die ".env not changed, no container attached"
fi
((${#emb_entries[@]} <= 1)) ||
	say "warning: ${#emb_entries[@]} Ollama containers are on an *internal* network (${emb_names[*]}); all go first"

all_entries=(${emb_entries[@]+"${emb_entries[@]}"} ${ext_entries[@]+"${ext_entries[@]}"})
backends=$(
	IFS=,
	printf '[%s]' "${all_entries[*]}"
)
new_line="OLLAMA_BACKENDS='$backends'"
say "embedded: ${emb_names[*]:-none}; extras: ${ext_names[*]:-none}"
say "$new_line"

if ((dry_run)); then
	for item in ${to_attach[@]+"${to_attach[@]}"}; do say "would attach ${item#* } to $attach_net"; done
	say "dry run: nothing changed"
	exit 0
fi

# ---- attach containers that share no network with the gateway -----------------------------
for item in ${to_attach[@]+"${to_attach[@]}"}; do
	id=${item%% *} name=${item#* }
	out=$(docker network connect "$attach_net" "$id" 2>&1) ||
		die "could not attach $name to $attach_net: $out; .env not changed"
	say "attached $name to $attach_net"
done

# ---- write .env atomically -----------------------------------------------------------------
# The current .env with its OLLAMA_BACKENDS line (and any quoted continuation lines) replaced by
# the new one, or the new one appended; every other line kept as it is.
closes_quote() { # does text $1 hold the closing quote $2 (\" and \\ do not count in "...")?
	local text=$1
	if [[ $2 == '"' ]]; then
		text=${text//\\\\/}
		text=${text//\\\"/}
	fi
	[[ $text == *"$2"* ]]
}
render_env() {
	local line value quote='' replaced=0
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ -n $quote ]]; then
			closes_quote "$line" "$quote" && quote=''
			continue
		fi
		if [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?OLLAMA_BACKENDS[[:space:]]*= ]]; then
			value=${line#*=}
			value=${value#"${value%%[![:space:]]*}"}
			if [[ ${value:0:1} == "'" || ${value:0:1} == '"' ]] && ! closes_quote "${value:1}" "${value:0:1}"; then
				quote=${value:0:1}
			fi
			((replaced)) || printf '%s\n' "$new_line"
			replaced=1
			continue
		fi
		printf '%s\n' "$line"
	done <.env
	((replaced)) || printf '%s\n' "$new_line"
}

env_path=$(readlink -f .env)
env_dir=$(dirname -- "$env_path")
tmp=$(mktemp "$env_dir/.env.wire.XXXXXX") || die "cannot create a file in $env_dir; .env not changed"
TMP_FILES+=("$tmp")
render_env >"$tmp" || die "cannot write $tmp; .env not changed"
chmod --reference="$env_path" "$tmp" 2>/dev/null || true
chown --reference="$env_path" "$tmp" 2>/dev/null || true

changed=0
backup=''
if cmp -s "$tmp" "$env_path"; then
	say ".env already has this OLLAMA_BACKENDS"
else
	backup=$(mktemp "$env_dir/.env.wire-backup.XXXXXX") || die "cannot create a file in $env_dir; .env not changed"
	TMP_FILES+=("$backup")
	cp -p -- "$env_path" "$backup" || die "cannot copy .env; .env not changed"
	mv -f -- "$tmp" "$env_path" || die "cannot replace .env; .env not changed"
	changed=1
	say "wrote OLLAMA_BACKENDS to $env_path"
fi

# Put the previous .env back and the gateway on it, then fail.
rollback() {
	if ((changed)); then
		mv -f -- "$backup" "$env_path"
		docker compose up -d "$service" >/dev/null 2>&1 || true
		die "$1; .env restored to its previous content and the $service recreated from it"
	fi
	die "$1"
}

# ---- recreate the gateway and check it -----------------------------------------------------
out=$(docker compose up -d "$service" 2>&1) || rollback "docker compose up -d $service failed: $(redact "$out")"
say "recreated $service"
deadline=$((SECONDS + health_timeout))
until docker compose exec -T "$service" python -c "$HEALTH_PY" >/dev/null 2>&1; do
	((SECONDS < deadline)) || rollback "the $service did not answer /healthz within ${health_timeout}s (see: docker compose logs $service)"
	sleep 1
done
say "$service answers /healthz"

status=0
for cmd in probe-ollama list-backends; do
	say "\$ neuronetz-gateway $cmd"
	rc=0
	out=$(docker compose exec -T "$service" neuronetz-gateway "$cmd" 2>&1) || rc=$?
	say "$out"
	((rc == 0)) || status=1
done
((status == 0)) ||
	die "the gateway runs with the new OLLAMA_BACKENDS, but a backend is not answering (above); .env is kept"
say "done: ${#all_entries[@]} backend(s) wired"
