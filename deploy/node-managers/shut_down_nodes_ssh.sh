#!/bin/sh
# Example ENERGY_SAVING_NODE_MANAGER_SLEEP_CMD: halts nodes over ssh (as the oar user, which
# needs `sudo /sbin/poweroff` on the nodes). greta writes one host name per line on stdin.
set -u
status=0
while read -r host; do
  /usr/bin/ssh -p 6667 -oBatchMode=yes -oConnectTimeout=10 "$host" sudo /sbin/poweroff ||
    status=1
done
exit $status
