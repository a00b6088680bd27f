#!/bin/sh
# provisioner lab installer -- TEST EQUIPMENT, NOT ANACONDA.
#
# It behaves like Anaconda for what the provisioning pipeline depends on, and
# nothing more: it reads inst.ks= from the kernel command line, brings the NIC
# up (ip=dhcp or dracut-style static ip=), fetches the kickstart, runs its %pre
# sections, applies its storage commands (ignoredisk, clearpart, zerombr, part,
# raid, volgroup, logvol, bootloader) to the virtual disks with sfdisk, mdadm,
# lvm, mke2fs, mkfs.vfat and mkswap, runs %pre-install and %post (chrooted into
# the new root unless --nochroot), runs %onerror when anything fails, writes a
# marker naming the node on the root filesystem, and reboots. xfs is made as ext4.
#
# With `liveimg --url= --checksum=` it is a deploy agent (image.sh): it unpacks
# the image onto the layout, configures it from the kickstart and installs GRUB,
# and the node boots a real Debian from its disks. The system it leaves is real;
# the installer is still lab equipment. Without liveimg it installs no OS: the
# boot code it leaves (in the MBR, and \EFI\BOOT\BOOTX64.EFI on an ESP) only
# prints that the node booted from its disk.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
LAB=/lab
KS=/tmp/ks
SYSROOT=/mnt/sysimage
LOG=/tmp/lab-installer.log
FINAL=reboot
FAILING=0
STARTED=$(date +%s)
mkdir -p "$KS" "$SYSROOT" /run/mdadm /run/lock/lvm /run/lvm /dev/md

say() { echo "lab-installer: [$(($(date +%s) - STARTED))s] $*" | tee -a "$LOG"; }
arg() { # arg NAME: the value of NAME= on the kernel command line
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1="*) echo "${w#*=}"; return 0 ;; esac
	done
	return 1
}
finish() { # finish ACTION: leave the machine (qemu -no-reboot turns reboot into exit)
	sync
	say "$1 (after $(($(date +%s) - STARTED)) s)"
	case "$1" in
	poweroff | halt | shutdown) poweroff -f ;;
	shell) exec sh ;;
	*) reboot -f ;;
	esac
	sleep 5
}
fail() { # fail REASON: run %onerror sections like Anaconda, then stop
	say "INSTALLATION FAILED: $*"
	if [ "$FAILING" = 0 ]; then
		FAILING=1
		run_sections onerror || true
	fi
	finish "$(arg inst.lab.onfail || echo poweroff)"
	exit 1
}

banner() {
	cat <<'EOF'
==========================================================================
 provisioner LAB INSTALLER -- test equipment for the provisioning pipeline
 NOT an operating system installer (not Anaconda). It does what Anaconda
 does for the pipeline: fetch the kickstart, partition the disks (sfdisk,
 mdadm, lvm), make filesystems, run %pre/%post/%onerror, reboot. A liveimg
 kickstart gets its image unpacked, configured and made bootable (GRUB);
 otherwise no OS is installed. xfs -> ext4 stand-in.
==========================================================================
EOF
}

# ---------------------------------------------------------------- network
mask_bits() { # 255.255.255.0 -> 24 (a number passes through)
	case "$1" in *.*) ;; *) echo "$1"; return ;; esac
	bits=0
	for o in $(echo "$1" | tr . ' '); do
		case "$o" in 255) bits=$((bits + 8)) ;; 254) bits=$((bits + 7)) ;; 252) bits=$((bits + 6)) ;;
		248) bits=$((bits + 5)) ;; 240) bits=$((bits + 4)) ;; 224) bits=$((bits + 3)) ;;
		192) bits=$((bits + 2)) ;; 128) bits=$((bits + 1)) ;; esac
	done
	echo "$bits"
}
first_nic() {
	for d in /sys/class/net/*; do
		[ -e "$d/device" ] && { echo "${d##*/}"; return 0; }
	done
	return 1
}
boot_nic() { # the NIC named by BOOTIF=01-aa-bb-... (as iPXE scripts pass it), else the first
	want=$(arg BOOTIF | sed 's/^01-//; s/-/:/g' | tr A-F a-f)
	if [ -n "$want" ]; then
		for d in /sys/class/net/*; do
			[ "$(cat "$d/address")" = "$want" ] && { echo "${d##*/}"; return 0; }
		done
		say "BOOTIF $want: no such NIC, using the first one"
	fi
	first_nic
}
net_up() {
	i=0
	until first_nic >/dev/null; do
		i=$((i + 1))
		[ $i -gt 50 ] && fail "no network interface appeared"
		sleep 0.2
	done
	nic=$(boot_nic)
	ip link set lo up
	spec=$(arg ip || echo dhcp)
	case "$spec" in
	dhcp | dhcp4 | on | any) mode=dhcp ;;
	*:dhcp | *:dhcp4) nic=${spec%%:*}; mode=dhcp ;;
	*) mode=static ;;
	esac
	ip link set "$nic" up
	if [ $mode = dhcp ]; then
		say "network: DHCP on $nic"
		udhcpc -i "$nic" -f -q -n -t 15 -T 2 -s "$LAB/udhcpc.sh" >>"$LOG" 2>&1 ||
			fail "no DHCP answer on $nic"
	else
		# dracut: ip=<client-IP>:[<peer>]:<gateway>:<netmask>:<hostname>:<interface>:none
		old_ifs=$IFS
		IFS=:
		set -- $spec
		IFS=$old_ifs
		cip=${1:-}; gw=${3:-}; mask=${4:-24}; host=${5:-}
		[ -n "${6:-}" ] && nic=$6 && ip link set "$nic" up
		[ -n "$cip" ] || fail "ip=$spec: no client address"
		say "network: static $cip/$(mask_bits "$mask") on $nic"
		ip addr add "$cip/$(mask_bits "$mask")" dev "$nic" || fail "cannot set $cip on $nic"
		[ -n "$gw" ] && ip route add default via "$gw" dev "$nic"
		[ -n "$host" ] && hostname "$host"
		ns=$(arg nameserver || true)
		[ -n "$ns" ] && echo "nameserver $ns" >/etc/resolv.conf
	fi
	ip -4 addr show dev "$nic" | grep inet | tee -a "$LOG"
	NIC=$nic
}

# ---------------------------------------------------------------- kickstart
fetch_ks() {
	url=$1
	shown=${url%%\?*} # never print the query: it carries the deploy token
	case "$url" in
	http://* | https://* | ftp://*)
		i=0
		until curl -fsS --connect-timeout 10 -m 60 -o "$KS/ks.cfg" "$url" 2>>"$LOG"; do
			i=$((i + 1))
			[ $i -ge 10 ] && return 1
			say "kickstart $shown: not fetched yet, retrying"
			sleep 2
		done
		;;
	file:* | /*) cp "${url#file:}" "$KS/ks.cfg" || return 1 ;;
	*) say "unsupported inst.ks= $shown"; return 1 ;;
	esac
	say "kickstart $shown fetched ($(wc -c <"$KS/ks.cfg") bytes)"
}
expand_includes() { # expand_includes IN OUT STRICT: inline %include files or URLs
	: >"$2"
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
		%include[\ \	]*)
			f=$(echo "$line" | awk '{print $2}')
			case "$f" in
			http://* | https://*) curl -fsS -m 60 "$f" >>"$2" 2>/dev/null ||
				{ [ "$3" = strict ] && fail "%include $f: cannot fetch"; } ;;
			*) if [ -r "$f" ]; then cat "$f" >>"$2"; elif [ "$3" = strict ]; then
				fail "%include $f: no such file"; fi ;;
			esac
			;;
		*) printf '%s\n' "$line" >>"$2" ;;
		esac
	done <"$1"
}
split_ks() { # commands -> $KS/commands, sections -> $KS/section.NN.{header,body}
	rm -f "$KS"/section.* "$KS/commands"
	awk -v dir="$KS" -f "$LAB/ks-split.awk" "$1" || fail "kickstart: unterminated section (missing %end)"
}
run_sections() { # run_sections KIND: every %KIND section, in kickstart order
	want=$1
	for header in "$KS"/section.*.header; do
		[ -e "$header" ] || continue
		body=${header%.header}.body
		set -- $(cat "$header")
		kind=$1
		shift
		[ "$kind" = "$want" ] || continue
		interp=/bin/sh; chroot=yes; onfail=no; slog=""
		[ "$want" = post ] || chroot=no
		for o in "$@"; do
			case "$o" in
			--interpreter=*) interp=${o#*=} ;;
			--nochroot) chroot=no ;;
			--erroronfail) onfail=yes ;;
			--log=* | --logfile=*) slog=${o#*=} ;;
			esac
		done
		case "$interp" in # /bin/sh is bash on RHEL: kickstarts rely on it (local, sort -V, ...)
		*/sh | */bash) interp=/usr/bin/bash && [ -x "$interp" ] || interp=/bin/sh ;;
		*/ash | */dash) interp=/bin/sh ;;
		*) say "%$kind: interpreter $interp is not in the lab installer; section skipped"; continue ;;
		esac
		sec=${header##*/section.}
		say "running %$kind section ${sec%.header} (chroot: $chroot)"
		rc=0
		if [ $chroot = yes ]; then
			cp "$body" "$SYSROOT/tmp/ks-script"
			chroot "$SYSROOT" "$interp" /tmp/ks-script >"$KS/out" 2>&1 || rc=$?
			rm -f "$SYSROOT/tmp/ks-script"
		else
			(cd /tmp && "$interp" "$body") >"$KS/out" 2>&1 || rc=$?
		fi
		awk -v k="$kind" '{ print "  %" k "| " $0 }' "$KS/out" | tee -a "$LOG"
		if [ -n "$slog" ]; then
			[ $chroot = yes ] && slog="$SYSROOT$slog"
			mkdir -p "$(dirname "$slog")" && cat "$KS/out" >>"$slog"
		fi
		if [ $rc != 0 ]; then
			say "%$kind section exited with $rc"
			[ $onfail = yes ] && [ "$want" != onerror ] && fail "%$kind script failed (--erroronfail)"
		fi
	done
	return 0
}

# ---------------------------------------------------------------- storage, images
. "$LAB/storage.sh"
. "$LAB/image.sh"

# ---------------------------------------------------------------- the new system
ks_commands() { # the commands that are not storage (hostname, network, root password, image...)
	HOSTNAME_KS=""; ROOTPW=""; TIMEZONE=""
	NET_DEVICE=""; NET_PROTO=""; NET_IP=""; NET_MASK=""; NET_GW=""; NET_DNS=""
	: >"$KS/sshkeys"
	while IFS= read -r line; do
		case "$line" in '' | '#'*) continue ;; esac
		esc=$(printf '%s\n' "$line" | sed 's/[$`]/\\&/g') # words as shlex reads them, no expansion
		eval "set -- $esc" 2>/dev/null || fail "kickstart: cannot parse: $line"
		cmd=$1
		shift
		case "$cmd" in
		network)
			for o in "$@"; do
				case "$o" in
				--hostname=*) HOSTNAME_KS=${o#*=} ;;
				--device=*) [ -z "$NET_DEVICE" ] && NET_DEVICE=$(echo "${o#*=}" | tr A-F a-f) ;;
				--bootproto=*) NET_PROTO=${o#*=} ;;
				--ip=*) NET_IP=${o#*=} ;;
				--netmask=*) NET_MASK=${o#*=} ;;
				--gateway=*) NET_GW=${o#*=} ;;
				--nameserver=*) NET_DNS=${o#*=} ;;
				esac
			done ;;
		liveimg)
			for o in "$@"; do
				case "$o" in --url=*) IMG_URL=${o#*=} ;; --checksum=*) IMG_SUM=${o#*=} ;; esac
			done ;;
		sshkey)
			user=root
			for o in "$@"; do case "$o" in --username=*) user=${o#*=} ;; --*) ;; *) echo "$user $o" >>"$KS/sshkeys" ;; esac; done ;;
		rootpw) # only a crypt(3) hash goes into /etc/shadow; anything else locks root
			ROOTPW='!'
			case " $* " in *" --iscrypted "*) for o in "$@"; do case "$o" in --*) ;; *) ROOTPW=$o ;; esac; done ;; esac ;;
		timezone) for o in "$@"; do case "$o" in --*) ;; *) TIMEZONE=$o ;; esac; done ;;
		reboot | poweroff | halt | shutdown) FINAL=$cmd ;;
		esac
	done <"$KS/commands"
}
write_system() {
	mkdir -p "$SYSROOT/etc/provisioner" "$SYSROOT/root" "$SYSROOT/tmp" "$SYSROOT/var/log" \
		"$SYSROOT/bin" "$SYSROOT/sbin" "$SYSROOT/lib" "$SYSROOT/lib64" "$SYSROOT/usr" \
		"$SYSROOT/proc" "$SYSROOT/sys" "$SYSROOT/dev"
	chmod 1777 "$SYSROOT/tmp"
	cp "$KS/fstab" "$SYSROOT/etc/fstab"
	host=${HOSTNAME_KS:-$NODE}
	echo "$host" >"$SYSROOT/etc/hostname"
	[ -n "$TIMEZONE" ] && echo "$TIMEZONE" >"$SYSROOT/etc/timezone"
	if [ -n "$ROOTPW" ]; then
		(umask 077 && echo "root:$ROOTPW:19000:0:99999:7:::" >"$SYSROOT/etc/shadow")
	fi
	write_marker
}
write_marker() { # what the lab reads back from a node's disks: who, when, by which kickstart
	host=${HOSTNAME_KS:-$NODE}
	mkdir -p "$SYSROOT/etc/provisioner"
	cp "$KS/layout" "$SYSROOT/etc/provisioner/lab-layout"
	{
		echo "node=$NODE"
		echo "hostname=$host"
		echo "installer=provisioner-lab-installer"
		echo "kickstart=$KS_SHOWN"
		[ -n "$IMG_URL" ] && echo "image=${IMG_URL%%\?*}" && echo "image_sha256=${IMG_SUM#sha256:}"
		echo "installed_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$SYSROOT/etc/provisioner/lab-installed"
	say "marker /etc/provisioner/lab-installed written for node $NODE"
}
install_local_boot() { # what the node runs when it boots from disk: one line, then idle
	text=$(sed "s/{node}/$NODE/" "$LAB/localboot.msg")
	printf '\r\n%s\r\n' "$text" >/tmp/localboot.txt
	if grep -q '^/boot/efi ' "$KS/mounts.sorted" 2>/dev/null; then
		mkdir -p "$SYSROOT/boot/efi/EFI/BOOT"
		cat "$LAB/bootx64.head" /tmp/localboot.txt >/tmp/bootx64.efi
		dd if=/tmp/bootx64.efi of="$SYSROOT/boot/efi/EFI/BOOT/BOOTX64.EFI" bs=1024 count=1 conv=sync 2>/dev/null ||
			fail "cannot write \\EFI\\BOOT\\BOOTX64.EFI"
		say "UEFI: \\EFI\\BOOT\\BOOTX64.EFI written on the ESP (prints a line, no OS)"
	fi
	cat "$LAB/mbr.head" /tmp/localboot.txt >/tmp/mbr.bin
	for f in "$KS"/sfdisk.*; do
		disk=${f##*.}
		dd if=/tmp/mbr.bin of="/dev/$disk" bs=440 count=1 conv=sync,notrunc 2>/dev/null ||
			fail "cannot write the boot code into the MBR of $disk"
		say "BIOS: boot code written into the MBR of $disk (prints a line, no OS)"
	done
}
chroot_env() { # chroot_env on|off: the installer's tools inside the new root for %post
	if [ "$1" = on ]; then
		for d in bin sbin lib lib64 usr; do
			[ -d "/$d" ] && mount --bind "/$d" "$SYSROOT/$d"
		done
		mount -t proc proc "$SYSROOT/proc"
		mount -t sysfs sysfs "$SYSROOT/sys"
		mount --bind /dev "$SYSROOT/dev"
		mkdir -p "$SYSROOT/etc"
		[ -e /etc/resolv.conf ] && cp /etc/resolv.conf "$SYSROOT/etc/resolv.conf"
	else
		for d in dev sys proc usr lib64 lib sbin bin; do
			umount "$SYSROOT/$d" 2>/dev/null
		done
	fi
	return 0
}

# ---------------------------------------------------------------- main
main() {
	banner | tee -a "$LOG"
	discovery=$(arg provisioner.discovery || true)
	if [ -n "$discovery" ]; then
		. "$LAB/discover.sh"
		discover "$discovery"
	fi
	url=$(arg inst.ks || arg ks || true)
	[ -n "$url" ] || { say "no inst.ks= on the kernel command line"; finish poweroff; }
	KS_SHOWN=${url%%\?*}
	NODE=$(arg inst.lab.node || true)
	[ -n "$NODE" ] || NODE=$(basename "$KS_SHOWN")
	say "node $NODE"
	net_up
	fetch_ks "$url" || { say "kickstart $KS_SHOWN could not be fetched"; finish poweroff; }

	# Like Anaconda: %pre runs before the commands are read, so it may write %include files.
	expand_includes "$KS/ks.cfg" "$KS/ks.pass1" lenient
	split_ks "$KS/ks.pass1"
	run_sections pre
	expand_includes "$KS/ks.cfg" "$KS/ks.full" strict
	split_ks "$KS/ks.full"
	ks_commands
	storage_apply # partitions, md, LVM, filesystems, mounts on $SYSROOT
	run_sections pre-install
	if [ -n "$IMG_URL" ]; then
		image_install # the image's own tools run %post: bind only /dev, /proc, /sys, /run
		run_sections post
		root_mounts off
	else
		grep -q '^%packages' "$KS/ks.full" && say "%packages: the lab installer installs no packages"
		write_system
		install_local_boot
		chroot_env on
		run_sections post
		chroot_env off
	fi
	cp "$LOG" "$SYSROOT/var/log/lab-installer.log"
	storage_release
	say "installation of $NODE complete"
	finish "$FINAL"
}

main "$@"
