#!/bin/sh
# Example ENERGY_SAVING_NODE_MANAGER_WAKE_UP_CMD: wakes nodes with Wake-on-LAN.
# greta writes one host name per line on stdin. The MAC address of each node is looked up in
# /etc/oar/node_macs (lines "host mac"); `wakeonlan` comes from the Debian package wakeonlan.
# Exit non-zero if a node could not be woken: greta then marks it Suspected.
set -u
status=0
while read -r host; do
  mac=$(awk -v h="$host" '$1 == h { print $2 }' /etc/oar/node_macs)
  if [ -z "$mac" ]; then
    echo "no MAC address for $host in /etc/oar/node_macs" >&2
    status=1
    continue
  fi
  wakeonlan "$mac" >/dev/null || status=1
done
exit $status
