#!/bin/sh
# busybox udhcpc hook: configure the interface from the DHCP answer.
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound | renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	for r in ${router:-}; do ip route add default via "$r" dev "$interface" && break; done
	: >/etc/resolv.conf
	for d in ${dns:-}; do echo "nameserver $d" >>/etc/resolv.conf; done
	[ -n "${hostname:-}" ] && hostname "$hostname"
	;;
esac
exit 0
