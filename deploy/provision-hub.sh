#!/usr/bin/env bash
# Provision the fablab-gateway hub: Mosquitto with the site's generated configuration,
# the hub package, its configuration and snapshot signing key, the hub service, the
# nightly backup timer, and a reverse-proxy example for HTTPS. Safe to run again: every
# step checks what is already there; the signing key and the broker passwords are made
# once and never replaced (a new key would make every node refuse the hub's snapshots).
#
# usage: sudo deploy/provision-hub.sh [options] HUB_YAML
#   HUB_YAML        the site's hub configuration (config/hub.yaml, edited)
# options:
#   --from wheel:PATH | checkout:PATH | index[:VERSION]
#                   what to install; default: the newest dist/*.whl of this checkout
#                   (python3 scripts/bootstrap.py wheel), else this checkout itself
#   --extras LIST   pip extras (default hub)
#   --domain NAME   the hub's public name, written into the reverse-proxy examples
#   --root DIR      install into DIR as if it were / and only list the system commands
#                   (apt-get, useradd, systemctl...) in DIR/var/log/fabgate-provision.log
set -euo pipefail

PROG=provision-hub
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE PROG
readonly SERVICE_USER=fabgate ETC_DIR=/etc/fabgate STATE_DIR=/var/lib/fabgate
readonly VENV=/opt/fabgate/venv
readonly BROKER_DIR=/etc/fabgate/mosquitto
DOMAIN=fabgate.example.org
# shellcheck source=deploy/lib/provision.sh
. "${HERE}/lib/provision.sh"

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
parse_extra_arg() {
    case "$1" in
        --domain) [[ $# -ge 2 ]] || die "--domain needs a host name"; DOMAIN="$2"; EXTRA_SHIFT=2 ;;
        --domain=*) DOMAIN="${1#--domain=}"; EXTRA_SHIFT=1 ;;
        *) return 1 ;;
    esac
}

parse_common_args "$@"
[[ ${#POSITIONAL[@]} -eq 1 ]] || die "usage: sudo $0 [options] HUB_YAML (--help)"
HUB_YAML="${POSITIONAL[0]}"
readonly HUB_YAML
[[ -f ${HUB_YAML} ]] || die "no such file: ${HUB_YAML}"
[[ ${DOMAIN} =~ ^[A-Za-z0-9.-]+$ ]] || die "--domain ${DOMAIN}: not a host name"
[[ -f ${HERE}/systemd/fabgate-hub.service ]] || die "${HERE}/systemd/fabgate-hub.service is missing: run the script from its deploy/ folder"
SPEC="$(package_spec "${HERE}/.." "${EXTRAS:-hub}")"
FABGATE="$(target "${VENV}")/bin/fabgate"

step "system packages"
apt_packages python3-venv mosquitto mosquitto-clients

step "service user ${SERVICE_USER}"
service_user "${SERVICE_USER}" "${STATE_DIR}"

step "directories"
install_dir "${ETC_DIR}" 0750 "root:${SERVICE_USER}"
install_dir "${ETC_DIR}/keys" 0750 "root:${SERVICE_USER}"
install_dir "${ETC_DIR}/examples" 0755 root:root
install_dir "${BROKER_DIR}" 0700 root:root
install_dir "${STATE_DIR}" 0750 "${SERVICE_USER}:${SERVICE_USER}"
install_dir "${STATE_DIR}/backups" 0700 "${SERVICE_USER}:${SERVICE_USER}"
install_dir "$(dirname "${VENV}")" 0755 root:root

step "virtualenv ${VENV} with ${SPEC}"
install_package "${VENV}" "${SPEC}"

step "configuration in ${ETC_DIR}"
# It holds the hub's broker password and API tokens: readable by the service only.
install_file "${HUB_YAML}" "${ETC_DIR}/hub.yaml" 0640 "root:${SERVICE_USER}"

step "snapshot signing key"
KEY="$(target "${ETC_DIR}/keys/hub-signing.pem")"
if [[ -f ${KEY} ]]; then
    echo "    unchanged ${ETC_DIR}/keys/hub-signing.pem (made once, never replaced)"
else
    "${FABGATE}" keygen --out "${KEY}"
    CHANGED=1
fi
chmod 0600 "${KEY}"
system chown "${SERVICE_USER}:${SERVICE_USER}" "${ETC_DIR}/keys/hub-signing.pem"
"${FABGATE}" check-config "$(target "${ETC_DIR}/hub.yaml")"

step "Mosquitto: accounts, ACL and settings generated for the site"
# Passwords are made once and kept in ${BROKER_DIR} (root only): running this again adds
# the accounts of new machines and keeps everyone else's.
"${FABGATE}" deploy mosquitto --config "$(target "${ETC_DIR}/hub.yaml")" --out "$(target "${BROKER_DIR}")"
install_file "$(target "${BROKER_DIR}/fabgate.conf")" /etc/mosquitto/conf.d/fabgate.conf 0644 root:root
install_file "$(target "${BROKER_DIR}/fabgate.acl")" /etc/mosquitto/fabgate.acl 0640 root:mosquitto
install_file "$(target "${BROKER_DIR}/fabgate.passwd")" /etc/mosquitto/fabgate.passwd 0640 root:mosquitto
# Mosquitto reads use_username_as_clientid and listeners only at start: restart it.
system systemctl enable mosquitto.service
[[ ${CHANGED} -eq 0 ]] || system systemctl restart mosquitto.service

step "systemd units: hub and nightly backup"
install_file "${HERE}/systemd/fabgate-hub.service" /etc/systemd/system/fabgate-hub.service 0644 root:root
install_file "${HERE}/systemd/fabgate-backup.service" /etc/systemd/system/fabgate-backup.service 0644 root:root
install_file "${HERE}/systemd/fabgate-backup.timer" /etc/systemd/system/fabgate-backup.timer 0644 root:root
enable_unit fabgate-hub.service
system systemctl enable --now fabgate-backup.timer

step "reverse-proxy examples (HTTPS) in ${ETC_DIR}/examples"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
for f in Caddyfile nginx.conf; do
    sed "s/fabgate\.example\.org/${DOMAIN}/g" "${HERE}/reverse-proxy/${f}" > "${tmp}/${f}"
    install_file "${tmp}/${f}" "${ETC_DIR}/examples/${f}" 0644 root:root
done

cat <<TXT
${PROG}: done.
  hub logs:        journalctl -u fabgate-hub -f
  node public key: ${ETC_DIR}/keys/hub-signing.pub (give it to provision-node.sh)
  node passwords:  ${BROKER_DIR}/ (one file per node, root only)
  HTTPS:           ${ETC_DIR}/examples/Caddyfile or nginx.conf
TXT
