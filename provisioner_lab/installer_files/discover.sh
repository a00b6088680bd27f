# provisioner lab discovery agent -- TEST EQUIPMENT (sourced by installer.sh).
#
# With provisioner.discovery=<URL> on the kernel command line the lab installer
# is the site's discovery OS: it reads the machine's hardware from sysfs and
# /proc (NICs, disks with serial/WWN, CPU, memory, firmware mode, DMI), posts
# one JSON report to <URL> (the boot server's POST /api/v1/discovery), then asks
# <URL>/<boot MAC>/next every few seconds what to do: "wait" (not enrolled yet)
# or "poweroff" (enrolled: the pipeline powers it on through its BMC).
# Strings go into the JSON as printable ASCII only, quotes and backslashes
# escaped; the boot server checks everything again (it trusts nothing).

json_str() { # json_str VALUE: a JSON string, or null when VALUE is empty
	v=$(printf '%s' "$1" | tr -cd '\040-\176' | sed 's/\\/\\\\/g; s/"/\\"/g; s/^ *//; s/ *$//')
	v=$(printf '%s' "$v" | cut -c1-128)
	if [ -n "$v" ]; then printf '"%s"' "$v"; else printf 'null'; fi
}
sysval() { [ -r "$1" ] && cat "$1" 2>/dev/null | head -n 1; }

nics_json() {
	sep=""
	for d in /sys/class/net/*; do
		[ -e "$d/device" ] || continue
		name=${d##*/}
		mac=$(sysval "$d/address")
		driver=$(basename "$(readlink "$d/device/driver" 2>/dev/null)" 2>/dev/null)
		carrier=$(sysval "$d/carrier")
		speed=$(sysval "$d/speed")
		case "$carrier" in 1) link=true ;; 0) link=false ;; *) link=null ;; esac
		case "$speed" in '' | -* | *[!0-9]*) speed=null ;; esac
		printf '%s{"mac": %s, "name": %s, "driver": %s, "link": %s, "speed_mbps": %s}' \
			"$sep" "$(json_str "$mac")" "$(json_str "$name")" "$(json_str "$driver")" "$link" "$speed"
		sep=", "
	done
}

disks_json() {
	sep=""
	for d in /sys/block/*; do
		name=${d##*/}
		case "$name" in loop* | ram* | md* | dm-* | zram*) continue ;; esac
		sectors=$(sysval "$d/size")
		bytes=$(( ${sectors:-0} * 512 ))
		serial=$(sysval "$d/serial" || sysval "$d/device/serial")
		[ -n "$serial" ] || serial=$(sysval "$d/device/serial")
		wwn=$(sysval "$d/wwid" || sysval "$d/device/wwid")
		case "$wwn" in naa.*) wwn=0x${wwn#naa.} ;; *) wwn="" ;; esac
		rot=$(sysval "$d/queue/rotational")
		rem=$(sysval "$d/removable")
		model=$(sysval "$d/device/model")
		case "$rot" in 1) rot=true ;; 0) rot=false ;; *) rot=null ;; esac
		case "$rem" in 1) rem=true ;; *) rem=false ;; esac
		case "$name" in sr* | fd*) rem=true ;; esac
		printf '%s{"name": %s, "size_bytes": %s, "model": %s, "serial": %s, "wwn": %s, "rotational": %s, "removable": %s}' \
			"$sep" "$(json_str "$name")" "$bytes" "$(json_str "$model")" "$(json_str "$serial")" \
			"$(json_str "$wwn")" "$rot" "$rem"
		sep=", "
	done
}

hardware_report() { # hardware_report BOOT_MAC: the JSON document
	cpus=$(grep -c '^processor' /proc/cpuinfo)
	cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
	mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
	mode=bios
	[ -d /sys/firmware/efi ] && mode=uefi
	dmi=/sys/class/dmi/id
	printf '{"boot_mac": %s, "nics": [%s], "disks": [%s], "cpu": {"model": %s, "count": %s}, ' \
		"$(json_str "$1")" "$(nics_json)" "$(disks_json)" "$(json_str "$cpu_model")" "${cpus:-1}"
	printf '"memory_mb": %s, "boot_mode": "%s", "dmi": {"vendor": %s, "product": %s, "serial": %s}}\n' \
		"$(( ${mem_kb:-1024} / 1024 ))" "$mode" "$(json_str "$(sysval $dmi/sys_vendor)")" \
		"$(json_str "$(sysval $dmi/product_name)")" "$(json_str "$(sysval $dmi/product_serial)")"
}

discover() { # discover URL: report, then wait for what the boot server says
	url=$1
	say "discovery mode: reporting this machine's hardware to $url"
	net_up
	mac=$(cat "/sys/class/net/$NIC/address")
	hardware_report "$mac" >/tmp/report.json
	tee -a "$LOG" </tmp/report.json
	i=0
	until code=$(curl -s -o /tmp/answer -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary @/tmp/report.json "$url") && [ "$code" = 202 ]; do
		i=$((i + 1))
		say "report not taken (HTTP ${code:-none}: $(head -c 200 /tmp/answer 2>/dev/null))"
		[ $i -ge 10 ] && finish poweroff
		sleep 6
	done
	say "report taken; waiting for enrolment"
	while :; do
		action=$(curl -s "$url/$mac/next" | sed -n 's/.*"action": *"\([a-z]*\)".*/\1/p')
		case "$action" in
		poweroff) say "the boot server says: power off"; finish poweroff ;;
		*) sleep 5 ;;
		esac
	done
}
