# Image installs (kickstart `liveimg --url= --checksum=`): the lab installer as a
# deploy agent. Sourced by installer.sh; runs after storage_apply has made and
# mounted the kickstart's layout on $SYSROOT. It streams the image once (curl |
# tee to sha256sum | zstd | GNU tar, xattrs and ACLs kept), fails on a checksum
# mismatch, writes what the kickstart says about this node (fstab by UUID,
# hostname, systemd-networkd by MAC, resolv.conf, machine-id, root password,
# SSH keys, mdadm.conf) and installs GRUB from inside the new root: i386-pc on
# every disk with a biosboot partition, x86_64-efi at the removable path of the
# ESP (a firmware without boot entries finds it), then update-grub.
#
# It does NOT rebuild the initramfs: the image's own (built natively by
# `provisioner image build`, MODULES=most with the mdadm and lvm2 hooks)
# assembles RAID1 and LVM roots, and update-initramfs under TCG costs 1-2 min a
# node. mdadm.conf is written anyway, so the next kernel update embeds the arrays;
# until then they come up as md126/md127 (compare array UUIDs, not md numbers).
#
# The real GNU tar and zstd are called by full path: busybox ash prefers its own
# applets, and busybox tar has no zstd and drops xattrs (ping's capability).

IMG_URL=""
IMG_SUM=""
GRUB_CMDLINE="console=tty0 console=ttyS0,115200 no_timer_check"

in_root() { chroot "$SYSROOT" "$@"; }

image_unpack() {
	shown=${IMG_URL%%\?*}
	say "image: streaming $shown (sha256 checked while it unpacks)"
	rm -f /tmp/img.fifo /tmp/img.sum
	mkfifo /tmp/img.fifo
	sha256sum </tmp/img.fifo >/tmp/img.sum &
	sumpid=$!
	rc=0
	(
		set -o pipefail
		curl -fsS --retry 3 --connect-timeout 10 "$IMG_URL" | tee /tmp/img.fifo |
			/usr/bin/zstd -dcq | /usr/bin/tar -x -C "$SYSROOT" --numeric-owner \
			--xattrs --xattrs-include='*' --acls -f -
	) 2>>"$LOG" || rc=$?
	wait $sumpid
	got=$(cut -d' ' -f1 /tmp/img.sum)
	[ $rc = 0 ] || fail "image $shown: download or unpack failed (exit $rc): $(tail -n 2 "$LOG" | tr '\n' ' ')"
	want=${IMG_SUM#sha256:}
	if [ -n "$want" ] && [ "$got" != "$want" ]; then
		fail "image $shown: checksum mismatch: the kickstart says $want, the download is $got"
	fi
	say "image unpacked: sha256 $got, $(df -m "$SYSROOT" | awk 'NR == 2 { print $3 }') MiB on /"
}

root_mounts() { # root_mounts on|off: what programs chrooted in the image need (not our /bin)
	if [ "$1" = on ]; then
		mount --bind /dev "$SYSROOT/dev" && mount -t proc proc "$SYSROOT/proc" &&
			mount -t sysfs sysfs "$SYSROOT/sys" && mount -t tmpfs tmpfs "$SYSROOT/run" ||
			fail "cannot mount /dev, /proc, /sys, /run in the new root"
		mkdir -p "$SYSROOT/run/lock" "$SYSROOT/run/mdadm" "$SYSROOT/run/lvm"
	else
		for d in run sys proc dev; do umount "$SYSROOT/$d" 2>/dev/null; done
	fi
	return 0
}

uuid_of() { in_root blkid -s UUID -o value "$1"; }

image_fstab() { # $KS/fstab by device -> /etc/fstab by UUID; /dev/disk/by-uuid for grub-mkconfig
	mkdir -p /dev/disk/by-uuid
	echo "# written by the provisioner lab installer from the kickstart's layout" >"$SYSROOT/etc/fstab"
	while read -r dev mount type opts dump pass; do
		u=$(uuid_of "$dev")
		[ -n "$u" ] || fail "fstab: $dev ($mount) has no UUID"
		# no udev here: grub-mkconfig writes root=UUID= only if this link exists
		ln -sf "$(readlink -f "$dev")" "/dev/disk/by-uuid/$u"
		case "$type" in vfat) opts=umask=0077 ;; swap) opts=sw ;; esac
		[ "$mount" = / ] && opts=errors=remount-ro
		echo "UUID=$u $mount $type $opts $dump $pass" >>"$SYSROOT/etc/fstab"
	done <"$KS/fstab"
}

image_network() { # the kickstart's network lines as systemd-networkd config matched by MAC
	mac=$NET_DEVICE
	case "$mac" in ??:??:??:??:??:??) ;; *) mac=$(cat "/sys/class/net/$NIC/address") ;; esac
	host=${HOSTNAME_KS:-$NODE}
	short=${host%%.*}
	domain=""
	case "$host" in *.*) domain=${host#*.} ;; esac
	echo "$short" >"$SYSROOT/etc/hostname"
	mkdir -p "$SYSROOT/etc/systemd/network" "$SYSROOT/etc/systemd/system/multi-user.target.wants"
	{
		echo "# written by the provisioner lab installer from the kickstart's network line"
		printf '[Match]\nMACAddress=%s\n\n[Network]\n' "$mac"
		if [ "$NET_PROTO" = dhcp ]; then
			echo "DHCP=ipv4"
		else
			echo "Address=$NET_IP/$(mask_bits "${NET_MASK:-24}")"
			[ -n "$NET_GW" ] && echo "Gateway=$NET_GW"
			for ns in $(echo "$NET_DNS" | tr , ' '); do echo "DNS=$ns"; done
		fi
		[ -n "$domain" ] && echo "Domains=$domain"
	} >"$SYSROOT/etc/systemd/network/10-provisioner.network"
	ln -sf /lib/systemd/system/systemd-networkd.service \
		"$SYSROOT/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
	{
		printf '127.0.0.1\tlocalhost\n'
		if [ -n "$NET_IP" ]; then printf '%s\t%s %s\n' "$NET_IP" "$host" "$short"; else printf '127.0.1.1\t%s %s\n' "$host" "$short"; fi
	} >"$SYSROOT/etc/hosts"
	rm -f "$SYSROOT/etc/resolv.conf"
	{
		for ns in $(echo "$NET_DNS" | tr , ' '); do echo "nameserver $ns"; done
		[ -n "$domain" ] && echo "search $domain"
	} >"$SYSROOT/etc/resolv.conf"
	# dracut's ifname=NAME:MAC (the boot script passes the node's network.interface):
	# the NIC keeps that name on the installed system, as Anaconda makes it do
	for w in $(cat /proc/cmdline); do
		case "$w" in
		ifname=*:??:??:??:??:??:??)
			name=${w#ifname=}; name=${name%%:*}; link_mac=${w#ifname=*:}
			printf '# written by the provisioner lab installer from ifname= on its command line\n[Match]\nMACAddress=%s\n\n[Link]\nName=%s\n' \
				"$link_mac" "$name" >"$SYSROOT/etc/systemd/network/10-provisioner-$name.link"
			say "network: $link_mac is named $name"
			;;
		esac
	done
	say "network: $mac ${NET_IP:-dhcp}, hostname $host"
}

image_accounts() { # rootpw --iscrypted, sshkey, per-node SSH host keys and machine-id
	tr -d - </proc/sys/kernel/random/uuid >"$SYSROOT/etc/machine-id"
	if [ -n "$ROOTPW" ]; then
		in_root usermod -p "$ROOTPW" root >>"$LOG" 2>&1 || fail "rootpw: usermod failed"
	fi
	if [ -s "$KS/sshkeys" ]; then
		while read -r user key; do
			[ "$user" = root ] || { say "sshkey --username=$user: only root is supported here"; continue; }
			mkdir -p "$SYSROOT/root/.ssh" && chmod 700 "$SYSROOT/root/.ssh"
			echo "$key" >>"$SYSROOT/root/.ssh/authorized_keys"
		done <"$KS/sshkeys"
		chmod 600 "$SYSROOT/root/.ssh/authorized_keys"
	fi
	in_root ssh-keygen -A >>"$LOG" 2>&1 || fail "ssh-keygen -A failed in the new root"
	if [ -n "$TIMEZONE" ] && [ -e "$SYSROOT/usr/share/zoneinfo/$TIMEZONE" ]; then
		ln -sf "/usr/share/zoneinfo/$TIMEZONE" "$SYSROOT/etc/localtime"
		echo "$TIMEZONE" >"$SYSROOT/etc/timezone"
	fi
}

image_bootloader() {
	if [ -s "$KS/raids" ]; then
		mkdir -p "$SYSROOT/etc/mdadm"
		{ echo "HOMEHOST <ignore>"; in_root mdadm --detail --scan; } >"$SYSROOT/etc/mdadm/mdadm.conf"
	fi
	# No update-initramfs: the image's own initramfs assembles RAID and LVM (see the top).
	mkdir -p "$SYSROOT/etc/default"
	cat >"$SYSROOT/etc/default/grub" <<EOF
# written by the provisioner lab installer
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$GRUB_CMDLINE"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
	targets=""
	for f in "$KS"/sfdisk.*; do
		disk=${f##*.}
		grep -q 'name="biosboot"' "$f" || continue
		in_root grub-install --target=i386-pc "/dev/$disk" >>"$LOG" 2>&1 ||
			fail "grub-install --target=i386-pc /dev/$disk failed: $(tail -n 2 "$LOG" | tr '\n' ' ')"
		targets="$targets bios:$disk"
	done
	if grep -q '^/boot/efi ' "$KS/mounts.sorted"; then
		in_root grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram \
			>>"$LOG" 2>&1 || fail "grub-install --target=x86_64-efi failed: $(tail -n 2 "$LOG" | tr '\n' ' ')"
		targets="$targets uefi:\\EFI\\BOOT\\BOOTX64.EFI"
	fi
	[ -n "$targets" ] || fail "bootloader: no biosboot partition and no /boot/efi: nothing can boot"
	in_root update-grub >>"$LOG" 2>&1 || fail "update-grub failed: $(tail -n 2 "$LOG" | tr '\n' ' ')"
	say "GRUB installed:$targets; $(grep -m1 -o 'root=[^ ]*' "$SYSROOT/boot/grub/grub.cfg")"
}

image_install() { # after storage_apply: the whole deploy of an image
	image_unpack
	root_mounts on
	image_fstab
	image_network
	image_accounts
	image_bootloader
	write_marker
}
