# Split a kickstart into its command lines ($dir/commands) and its sections
# ($dir/section.NN.header holds "kind --options", $dir/section.NN.body the script).
BEGIN { n = 0; insec = 0; cmds = dir "/commands"; printf "" > cmds }
!insec && /^[ \t]*%(pre|pre-install|post|onerror|packages|addon|anaconda|traceback)([ \t]|$)/ {
	n++
	sec = sprintf("%s/section.%02d", dir, n)
	hdr = $0
	sub(/^[ \t]*%/, "", hdr)
	print hdr > (sec ".header"); close(sec ".header")
	printf "" > (sec ".body")
	insec = 1
	next
}
insec && /^[ \t]*%end[ \t]*$/ { close(sec ".body"); insec = 0; next }
insec { print > (sec ".body"); next }
{ print > cmds }
END { if (insec) exit 2 }
