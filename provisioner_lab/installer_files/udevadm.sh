#!/bin/sh
# udevadm of the lab installer (installed as /usr/bin/udevadm): `settle` only.
#
# Kickstart %pre scripts run `udevadm settle` before they look at the disks, as
# Anaconda's environment has udev. This initramfs has no udev daemon: the
# kernel creates every device node in devtmpfs itself, so there is no event
# queue to drain. What settle still means here: wait until every block device
# the kernel lists in sysfs has its node in /dev, within --timeout (default
# 120 s, like udevadm), and exit 1 naming those still missing when it runs out.
SYS=${PROVISIONER_SYSFS:-/sys}
DEV=${PROVISIONER_DEVFS:-/dev}
cmd=${1:-}
[ $# -gt 0 ] && shift

settle() {
	timeout=120
	while [ $# -gt 0 ]; do
		case "$1" in
		--timeout=*) timeout=${1#*=} ;;
		-t | --timeout) timeout=${2:-120}; shift ;;
		-t*) timeout=${1#-t} ;;
		esac
		shift
	done
	end=$(($(date +%s) + ${timeout%.*}))
	while :; do
		pending=""
		for dir in "$SYS"/class/block/*; do
			[ -e "$dir/dev" ] || continue
			[ -e "$DEV/${dir##*/}" ] || pending="$pending ${dir##*/}"
		done
		[ -z "$pending" ] && return 0
		if [ "$(date +%s)" -ge "$end" ]; then
			echo "udevadm settle: timed out after ${timeout}s; no device node for:$pending" >&2
			return 1
		fi
		sleep 1
	done
}

case "$cmd" in
settle) settle "$@" ;;
--version | version) echo "lab-installer udevadm (settle only: no udev daemon here)" ;;
*)
	echo "udevadm: '$cmd' is not in the lab installer (it has no udev daemon; only 'settle')" >&2
	exit 2
	;;
esac
