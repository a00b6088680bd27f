# Storage commands of the kickstart, applied like Anaconda does for the subset
# real templates use: ignoredisk, clearpart, zerombr, part (biosboot, /boot/efi,
# raid.NN, pv.NN, swap, mount points; --size --grow --maxsize --ondisk --fstype
# --label), raid (levels 0, 1, 10), volgroup, logvol (--size --grow --percent
# --maxsize), bootloader (recorded only). Sourced by installer.sh.
# Real e2fsprogs/util-linux tools are called by full path: busybox ash prefers its
# own applets (mke2fs, mkswap) to programs on PATH.
# Records ($KS/...): parts, raids, vgs, lvs; devmap (name -> device); fs (to make).

opt() { # opt NAME ARGS...: the value of --NAME=value
	n=$1
	shift
	for o in "$@"; do case "$o" in "--$n="*) echo "${o#*=}"; return 0 ;; esac; done
	return 1
}
flag() { # flag NAME ARGS...: is --NAME present
	n=$1
	shift
	for o in "$@"; do [ "$o" = "--$n" ] && return 0; done
	return 1
}
words() { # the positional (non-option) arguments
	for o in "$@"; do case "$o" in --*) ;; *) printf '%s ' "$o" ;; esac; done
}
need_equals() { # "--size 100" is legal kickstart but not read here: say so
	what=$1
	shift
	for o in "$@"; do
		case "$o" in --size | --ondisk | --fstype | --maxsize | --vgname | --name | --level | \
			--device | --percent | --label | --pesize | --only-use | --drives)
			fail "$what: write $o=VALUE (the lab installer reads options in that form)" ;;
		esac
	done
}
megs() { # a size in MiB, integer part
	echo "${1%%.*}"
}
lvm_() { lvm "$@" >>"$LOG" 2>&1; }

storage_read() {
	: >"$KS/parts"; : >"$KS/raids"; : >"$KS/vgs"; : >"$KS/lvs"; : >"$KS/devmap"; : >"$KS/fs"
	ONLY_USE=""; IGNORED=""; CLEAR=none; CLEAR_DRIVES=""; BOOTLOADER="(none)"; ZEROMBR=no
	while IFS= read -r line; do
		case "$line" in '' | '#'*) continue ;; esac
		esc=$(printf '%s\n' "$line" | sed 's/[$`]/\\&/g') # words as shlex reads them, no expansion
		eval "set -- $esc" 2>/dev/null || fail "kickstart: cannot parse: $line"
		cmd=$1
		shift
		case "$cmd" in
		ignoredisk)
			ONLY_USE=$(opt only-use "$@" | tr , ' ' || true)
			IGNORED=$(opt drives "$@" | tr , ' ' || true)
			;;
		clearpart)
			need_equals clearpart "$@"
			flag all "$@" && CLEAR=all
			d=$(opt drives "$@" || opt list "$@" || true)
			[ -n "$d" ] && CLEAR=drives && CLEAR_DRIVES=$(echo "$d" | tr , ' ')
			flag none "$@" && CLEAR=none
			;;
		zerombr) ZEROMBR=yes ;;
		part | partition)
			need_equals "part $*" "$@"
			name=$(words "$@" | awk '{print $1}')
			[ -n "$name" ] || fail "part: no mount point or name"
			flag onpart "$@" || opt onpart "$@" >/dev/null && fail "part $name: --onpart is not supported by the lab installer"
			size=$(opt size "$@" || true)
			flag recommended "$@" && size=512
			grow=no
			flag grow "$@" && grow=yes
			[ -z "$size" ] && { [ $grow = yes ] && size=1 || fail "part $name: --size= is required"; }
			ondisk=$(opt ondisk "$@" || echo -)
			echo "$name $(megs "$size") $grow $(opt maxsize "$@" || echo -) ${ondisk##*/} \
$(opt fstype "$@" || echo -) $(opt label "$@" || echo -)" >>"$KS/parts"
			;;
		raid)
			need_equals "raid $*" "$@"
			mount=$(words "$@" | awk '{print $1}')
			members=$(words "$@" | cut -d' ' -f2-)
			dev=$(opt device "$@" || echo "md$(wc -l <"$KS/raids")")
			dev=${dev##*/}
			level=$(opt level "$@") || fail "raid $mount: --level= is required"
			echo "$mount $dev $level $(opt fstype "$@" || echo -) $(opt label "$@" || echo -) $members" >>"$KS/raids"
			;;
		volgroup)
			need_equals "volgroup $*" "$@"
			vg=$(words "$@" | awk '{print $1}')
			pvs=$(words "$@" | cut -d' ' -f2-)
			flag useexisting "$@" && fail "volgroup $vg: --useexisting is not supported by the lab installer"
			echo "$vg $(opt pesize "$@" || echo 4096) $pvs" >>"$KS/vgs"
			;;
		logvol)
			need_equals "logvol $*" "$@"
			mount=$(words "$@" | awk '{print $1}')
			vg=$(opt vgname "$@") || fail "logvol $mount: --vgname= is required"
			name=$(opt name "$@") || fail "logvol $mount: --name= is required"
			size=$(opt size "$@" || true)
			pct=$(opt percent "$@" || echo -)
			flag recommended "$@" && size=512
			grow=no
			flag grow "$@" && grow=yes
			[ -z "$size" ] && { [ "$pct" != - ] || [ $grow = yes ]; } && size=1
			[ -n "$size" ] || fail "logvol $mount: --size= or --percent= is required"
			echo "$mount $vg $name $(megs "$size") $grow $pct $(opt maxsize "$@" || echo -) \
$(opt fstype "$@" || echo -) $(opt label "$@" || echo -)" >>"$KS/lvs"
			;;
		bootloader) BOOTLOADER="$*" ;;
		autopart) fail "autopart: the lab installer needs explicit part/raid/volgroup/logvol" ;;
		esac
	done <"$KS/commands"
}

disk_sectors() { cat "/sys/block/$1/size"; }
has_table() { sfdisk -d "/dev/$1" >/dev/null 2>&1; }
block_devices() { ls /sys/block; }
usable_disks() {
	for n in $(block_devices); do
		case "$n" in vd* | sd* | xvd* | hd* | nvme*n*) ;; *) continue ;; esac
		if [ -n "$ONLY_USE" ]; then echo " $ONLY_USE " | grep -q " $n " || continue; fi
		echo " $IGNORED " | grep -q " $n " && continue
		echo "$n"
	done
}
part_dev() { # part_dev DISK N
	case "$1" in *[0-9]) echo "/dev/${1}p$2" ;; *) echo "/dev/$1$2" ;; esac
}
part_type() { # part_type NAME FSTYPE: the GPT type GUID Anaconda would use
	case "$1:$2" in
	biosboot:* | *:biosboot) echo 21686148-6449-6E6F-744E-656564454649 ;;  # "Hah!IdontNeedEFI": the BIOS boot partition GRUB embeds into
	/boot/efi:* | *:efi) echo C12A7328-F81F-11D2-BA4B-00A0C93EC93B ;;
	raid.*) echo A19D880F-05FC-4D3B-A006-743F0F84911E ;;
	pv.*) echo E6D6D379-F507-44C2-A23C-238F2A3DF928 ;;
	swap:* | *:swap) echo 0657FD6D-A4AB-43C4-84E5-0933C84B4F4F ;;
	*) echo 0FC63DAF-8483-4772-8E79-3D69D8477DE4 ;;
	esac
}
wait_dev() {
	i=0
	while [ ! -b "$1" ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && fail "device $1 did not appear"
		sleep 0.1
	done
}
add_fs() { # add_fs MOUNT DEVICE FSTYPE LABEL: something to make and mount
	case "$1" in raid.* | pv.*) return ;; esac
	echo "$1 $2 $3 $4" >>"$KS/fs"
}

plan_partitions() { # $KS/sfdisk.<disk> scripts, $KS/devmap, $KS/fs entries, layout lines
	DISKS=$(usable_disks | tr '\n' ' ')
	[ -n "$DISKS" ] || fail "no usable disk (ignoredisk --only-use=$ONLY_USE)"
	say "disks: $DISKS"
	# Assign every part to a disk: --ondisk, else raid members round-robin, else the first disk.
	set -- $DISKS
	ndisks=$#
	rr=0
	: >"$KS/parts.placed"
	rm -f "$KS"/sfdisk.*
	while read -r name size grow maxsize ondisk fstype label; do
		if [ "$ondisk" = - ]; then
			case "$name" in
			raid.*) i=$((rr % ndisks + 1)); rr=$((rr + 1)); eval "ondisk=\${$i}" ;;
			*) ondisk=$1 ;;
			esac
		fi
		echo " $DISKS " | grep -q " $ondisk " || fail "part $name: --ondisk=$ondisk is not a usable disk ($DISKS)"
		echo "$ondisk $name $size $grow $maxsize $fstype $label" >>"$KS/parts.placed"
	done <"$KS/parts"
	for disk in $DISKS; do
		grep -q "^$disk " "$KS/parts.placed" || continue
		cleared=no
		case "$CLEAR" in all) cleared=yes ;; drives) echo " $CLEAR_DRIVES " | grep -q " $disk " && cleared=yes ;; esac
		if [ $cleared = no ] && has_table "$disk"; then
			fail "disk $disk has partitions and the kickstart does not clear it (clearpart --all or --drives=$disk)"
		fi
		total=$(($(disk_sectors "$disk") / 2048))
		usable=$((total - 2))
		fixed=$(awk -v d="$disk" '$1 == d { s += $3 } END { print s + 0 }' "$KS/parts.placed")
		growbase=$(awk -v d="$disk" '$1 == d && $4 == "yes" { s += $3 } END { print s + 0 }' "$KS/parts.placed")
		[ "$fixed" -le "$usable" ] || fail "disk $disk: the partitions need $fixed MiB, the disk has $usable MiB"
		extra=$((usable - fixed))
		last=$(awk -v d="$disk" '$1 == d { n = $2 } END { print n }' "$KS/parts.placed")
		echo "disk $disk ${total}MiB label=gpt" >>"$KS/layout"
		{
			# GUIDs from the kernel: libuuid waits for the entropy pool, seconds under TCG.
			echo "label: gpt"
			echo "label-id: $(cat /proc/sys/kernel/random/uuid)"
			n=0
			while read -r d name size grow maxsize fstype label; do
				[ "$d" = "$disk" ] || continue
				n=$((n + 1))
				if [ "$grow" = yes ]; then
					size=$((size + extra * size / growbase))
					[ "$maxsize" != - ] && [ "$size" -gt "$maxsize" ] && size=$maxsize
				fi
				spec="size=${size}MiB, "
				[ "$name" = "$last" ] && [ "$grow" = yes ] && [ "$maxsize" = - ] && spec=""
				echo "${spec}type=$(part_type "$name" "$fstype"), name=\"$name\", uuid=$(cat /proc/sys/kernel/random/uuid)"
				dev=$(part_dev "$disk" $n)
				echo "$name $dev" >>"$KS/devmap"
				shown=${size}MiB
				[ -z "$spec" ] && shown=rest
				echo "part ${dev#/dev/} name=$name size=$shown type=$(part_type "$name" "$fstype")" >>"$KS/layout"
				[ "$fstype" = - ] && case "$name" in /boot/efi) fstype=efi ;; swap) fstype=swap ;; biosboot) fstype=biosboot ;; /*) fstype=xfs ;; esac
				add_fs "$name" "$dev" "$fstype" "$label"
			done <"$KS/parts.placed"
		} >"$KS/sfdisk.$disk"
	done
}
apply_partitions() {
	for disk in $DISKS; do
		[ -e "$KS/sfdisk.$disk" ] || continue
		say "partitioning $disk (GPT)"
		sfdisk --wipe always --wipe-partitions never --no-reread --no-tell-kernel -q "/dev/$disk" \
			<"$KS/sfdisk.$disk" >>"$LOG" 2>&1 || fail "sfdisk on $disk failed: $(tail -n 3 "$LOG" | tr '\n' ' ')"
		blockdev --rereadpt "/dev/$disk" || fail "$disk: the kernel did not re-read the new partition table"
	done
	while read -r name dev; do
		wait_dev "$dev"
		dd if=/dev/zero of="$dev" bs=1M count=1 2>/dev/null # stale md/LVM/fs signatures
	done <"$KS/devmap"
}

storage_raid() {
	n=0
	while read -r mount dev level fstype label members; do
		case "$level" in RAID0 | raid0 | 0) lvl=0 ;; RAID1 | raid1 | 1) lvl=1 ;;
		RAID10 | raid10 | 10) lvl=10 ;; *) fail "raid $mount: level $level is not supported by the lab installer" ;;
		esac
		devs=""
		for m in $members; do
			d=$(awk -v m="$m" '$1 == m { print $2 }' "$KS/devmap")
			[ -n "$d" ] || fail "raid $mount: member $m has no part line"
			devs="$devs $d"
		done
		set -- $devs
		md=/dev/md$n
		say "raid $mount: $md ($dev) level $lvl on$devs"
		# Metadata at the end (1.0) where firmware must read the member as a plain
		# filesystem (the ESP), as Anaconda does; 1.2 elsewhere.
		meta=1.2
		case "$mount:$fstype" in /boot/efi:* | *:efi) meta=1.0 ;; esac
		yes | mdadm --create "$md" --run --assume-clean --metadata=$meta --name="$dev" \
			--level="$lvl" --raid-devices=$# "$@" >>"$LOG" 2>&1 || fail "raid $mount: mdadm --create failed"
		wait_dev "$md"
		ln -sf "../md$n" "/dev/md/$dev"
		echo "md md$n name=$dev level=$lvl metadata=$meta members=$(echo "$devs" | sed 's|/dev/||g; s|^ ||; s| |,|g')" >>"$KS/layout"
		case "$mount" in pv.*) echo "$mount /dev/md/$dev" >>"$KS/devmap" ;; esac
		[ "$fstype" = - ] && case "$mount" in swap) fstype=swap ;; /*) fstype=xfs ;; esac
		add_fs "$mount" "/dev/md/$dev" "$fstype" "$label"
		n=$((n + 1))
	done <"$KS/raids"
}

storage_lvm() {
	while read -r vg pesize pvs; do
		devs=""
		for p in $pvs; do
			d=$(awk -v m="$p" '$1 == m { print $2 }' "$KS/devmap")
			[ -n "$d" ] || fail "volgroup $vg: physical volume $p has no part or raid line"
			lvm_ pvcreate -ff -y "$d" || fail "volgroup $vg: pvcreate $d failed"
			devs="$devs $d"
		done
		say "volgroup $vg on$devs"
		lvm_ vgcreate -y -s "${pesize}k" "$vg" $devs || fail "volgroup $vg: vgcreate failed"
		echo "vg $vg pesize=${pesize}KiB pvs=$(echo "$devs" | sed 's|/dev/||g; s|^ ||; s| |,|g')" >>"$KS/layout"
	done <"$KS/vgs"
	while read -r mount vg name size grow pct maxsize fstype label; do
		grep -q "^$vg " "$KS/vgs" || fail "logvol $mount: volume group $vg is not defined by a volgroup line"
	done <"$KS/lvs"
	# Fixed sizes first, then the --grow volumes share what is left of their group.
	for pass in fixed grow; do
		while read -r mount vg name size grow pct maxsize fstype label; do
			if [ $pass = fixed ] && [ "$grow" = yes ]; then continue; fi
			if [ $pass = grow ] && [ "$grow" = no ]; then continue; fi
			if [ "$pct" != - ]; then
				ext="-l ${pct}%VG"
			elif [ "$grow" = yes ]; then
				free=$(megs "$(lvm vgs --noheadings --units m --nosuffix -o vg_free "$vg" | tr -d ' ')")
				base=$(awk -v v="$vg" '$2 == v { s += $4 } END { print s + 0 }' "$KS/lvs.pending")
				want=$((size + (free - base) * size / base))
				[ "$maxsize" != - ] && [ "$want" -gt "$maxsize" ] && want=$maxsize
				ext="-L ${want}m"
				others=$(awk -v v="$vg" -v n="$name" '$2 == v && $3 != n' "$KS/lvs.pending" | wc -l)
				[ "$others" = 0 ] && [ "$maxsize" = - ] && ext="-l 100%FREE"
				awk -v n="$name" -v v="$vg" '!($2 == v && $3 == n)' "$KS/lvs.pending" >"$KS/lvs.tmp" && mv "$KS/lvs.tmp" "$KS/lvs.pending"
			else
				ext="-L ${size}m"
			fi
			say "logvol $mount: $vg/$name ($ext)"
			lvm_ lvcreate -y -Wy -Zy -n "$name" $ext "$vg" || fail "logvol $mount: lvcreate $vg/$name failed"
			dev=/dev/$vg/$name
			[ -e "$dev" ] || dev=/dev/mapper/$(echo "$vg" | sed 's/-/--/g')-$(echo "$name" | sed 's/-/--/g')
			wait_dev "$dev"
			echo "lv $vg/$name size=$(lvm lvs --noheadings --units m --nosuffix -o lv_size "$vg/$name" | tr -d ' ')MiB mount=$mount" >>"$KS/layout"
			[ "$fstype" = - ] && case "$mount" in swap) fstype=swap ;; *) fstype=xfs ;; esac
			add_fs "$mount" "$dev" "$fstype" "$label"
		done <"$KS/lvs"
		[ $pass = fixed ] && awk '$5 == "yes"' "$KS/lvs" >"$KS/lvs.pending"
	done
}

storage_filesystems() {
	: >"$KS/fstab"
	: >"$KS/mounts"
	dup=$(awk '{ print $1 }' "$KS/fs" | grep '^/' | sort | uniq -d | head -n 1)
	[ -n "$dup" ] && fail "mount point $dup is used twice"
	grep -q '^/ ' "$KS/fs" || fail "the kickstart has no / (root) mount point"
	while read -r mount dev fstype label; do
		used=$fstype
		[ "$label" = - ] && label=""
		case "$fstype" in
		ext2 | ext3 | ext4 | xfs)
			used=ext4
			[ "$fstype" = xfs ] || used=$fstype
			/usr/sbin/mke2fs -F -q -t "$used" ${label:+-L "$label"} "$dev" >>"$LOG" 2>&1 || fail "mkfs $mount on $dev failed: $(tail -n 2 "$LOG" | tr "\n" " ")"
			;;
		efi | vfat)
			used=vfat
			mkfs.vfat ${label:+-n "$label"} "$dev" >>"$LOG" 2>&1 || fail "mkfs.vfat $mount on $dev failed: $(tail -n 2 "$LOG" | tr "\n" " ")"
			;;
		swap) /usr/sbin/mkswap ${label:+-L "$label"} "$dev" >>"$LOG" 2>&1 || fail "mkswap on $dev failed" ;;
		biosboot | prepboot | none) continue ;;
		*) fail "$mount: filesystem type $fstype is not supported by the lab installer" ;;
		esac
		note=""
		[ "$fstype" = xfs ] && note=" (asked: xfs; ext4 stand-in)"
		echo "fs $mount ${dev#/dev/} $used$note" >>"$KS/layout"
		say "filesystem $mount: $used on $dev$note"
		if [ "$fstype" = swap ]; then
			echo "$dev none swap defaults 0 0" >>"$KS/fstab"
		else
			echo "$dev $mount $used defaults 0 $([ "$mount" = / ] && echo 1 || echo 2)" >>"$KS/fstab"
			echo "$mount $dev $used" >>"$KS/mounts"
		fi
	done <"$KS/fs"
	awk '{ print length($1), $0 }' "$KS/mounts" | sort -n | cut -d' ' -f2- >"$KS/mounts.sorted"
	while read -r mount dev used; do
		mkdir -p "$SYSROOT$mount"
		mount -t "$used" "$dev" "$SYSROOT$mount" || fail "cannot mount $dev on $mount"
	done <"$KS/mounts.sorted"
}

storage_apply() {
	: >"$KS/layout"
	echo "# storage made by the provisioner lab installer (test equipment, not Anaconda)" >>"$KS/layout"
	storage_read
	plan_partitions
	apply_partitions
	storage_raid
	storage_lvm
	storage_filesystems
	echo "bootloader $BOOTLOADER (recorded; the lab installer installs no bootloader)" >>"$KS/layout"
	sed 's/^/  /' "$KS/layout" | tee -a "$LOG"
}

storage_release() {
	sort -r "$KS/mounts.sorted" | while read -r mount dev used; do
		umount "$SYSROOT$mount" || say "umount $mount failed"
	done
	[ -s "$KS/vgs" ] && lvm_ vgchange -an
	[ -s "$KS/raids" ] && mdadm --stop --scan >>"$LOG" 2>&1
	sync
}
