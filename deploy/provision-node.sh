#!/usr/bin/env bash
# Provision a Raspberry Pi as a fablab-gateway node. Safe to run again: every step
# checks what is already there, so re-running it upgrades the package and reinstalls
# the config, the hub key and the service, and restarts the node only if one changed.
#
# usage: sudo deploy/provision-node.sh [options] NODE_YAML HUB_PUBLIC_KEY
#   NODE_YAML       this node's configuration (e.g. config/nodes/laser-1.yaml, edited)
#   HUB_PUBLIC_KEY  the hub's hub-signing.pub (provision-hub.sh prints where it is)
# options:
#   --from wheel:PATH | checkout:PATH | index[:VERSION]
#                   what to install; default: the newest dist/*.whl of this checkout
#                   (python3 scripts/bootstrap.py wheel), else this checkout itself
#   --extras LIST   pip extras (default node,pi; node alone on a bench PC)
#   --root DIR      install into DIR as if it were / and only list the system commands
#                   (useradd, apt-get, systemctl...) in DIR/var/log/fabgate-provision.log
set -euo pipefail

PROG=provision-node
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE PROG
readonly SERVICE_USER=fabgate ETC_DIR=/etc/fabgate STATE_DIR=/var/lib/fabgate
readonly VENV=/opt/fabgate/venv
# shellcheck source=deploy/lib/provision.sh
. "${HERE}/lib/provision.sh"

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
parse_extra_arg() { return 1; }

parse_common_args "$@"
[[ ${#POSITIONAL[@]} -eq 2 ]] || die "usage: sudo $0 [options] NODE_YAML HUB_PUBLIC_KEY (--help)"
NODE_YAML="${POSITIONAL[0]}" HUB_KEY="${POSITIONAL[1]}"
readonly NODE_YAML HUB_KEY
[[ -f ${NODE_YAML} ]] || die "no such file: ${NODE_YAML}"
[[ -f ${HUB_KEY} ]] || die "no such file: ${HUB_KEY}"
grep -q "BEGIN PUBLIC KEY" "${HUB_KEY}" || die "${HUB_KEY} is not a PEM public key (the .pub file, never the hub's .pem private key)"
[[ -f ${HERE}/systemd/fabgate-node.service ]] || die "${HERE}/systemd/fabgate-node.service is missing: run the script from its deploy/ folder"
SPEC="$(package_spec "${HERE}/.." "${EXTRAS:-node,pi}")"

step "system packages"
apt_packages python3-venv python3-dev

step "SPI interface (RC522 reader)"
if [[ -n ${ROOT} ]] || command -v raspi-config >/dev/null 2>&1; then
    # 0 means "enable" for raspi-config's non-interactive mode; a no-op when already on.
    system raspi-config nonint do_spi 0
else
    echo "    raspi-config not found: enable SPI yourself (dtparam=spi=on)"
fi

step "service user ${SERVICE_USER}"
service_user "${SERVICE_USER}" "${STATE_DIR}" gpio spi

step "directories"
install_dir "${ETC_DIR}" 0750 "root:${SERVICE_USER}"
install_dir "${STATE_DIR}" 0750 "${SERVICE_USER}:${SERVICE_USER}"
install_dir "$(dirname "${VENV}")" 0755 root:root

step "virtualenv ${VENV} with ${SPEC}"
install_package "${VENV}" "${SPEC}"

step "configuration and hub public key in ${ETC_DIR}"
# The node config holds the node's MQTT password: readable by the service, not by all.
install_file "${NODE_YAML}" "${ETC_DIR}/node.yaml" 0640 "root:${SERVICE_USER}"
install_file "${HUB_KEY}" "${ETC_DIR}/hub-signing.pub" 0644 "root:${SERVICE_USER}"
"$(target "${VENV}")/bin/fabgate" check-config "$(target "${ETC_DIR}/node.yaml")"

step "systemd service"
install_file "${HERE}/systemd/fabgate-node.service" /etc/systemd/system/fabgate-node.service 0644 root:root
enable_unit fabgate-node.service
[[ -n ${ROOT} ]] || systemctl --no-pager --lines=5 status fabgate-node.service || true

echo "${PROG}: done. Logs: journalctl -u fabgate-node -f"
