#!/bin/sh
# Example node manager through IPMI, for both directions:
#   ENERGY_SAVING_NODE_MANAGER_WAKE_UP_CMD="/usr/local/lib/oar/ipmi_nodes.sh on"
#   ENERGY_SAVING_NODE_MANAGER_SLEEP_CMD="/usr/local/lib/oar/ipmi_nodes.sh soft"
# The BMC of host h is h-bmc; credentials in /etc/oar/ipmi.env (IPMI_USER, IPMI_PASSWORD).
# `ipmitool` comes from the Debian package ipmitool. Host names arrive on stdin, one per line.
set -u
action=${1:?usage: ipmi_nodes.sh on|soft|off}
. /etc/oar/ipmi.env
status=0
while read -r host; do
  IPMI_PASSWORD=$IPMI_PASSWORD ipmitool -I lanplus -H "${host}-bmc" -U "$IPMI_USER" -E \
    chassis power "$action" >/dev/null || status=1
done
exit $status
