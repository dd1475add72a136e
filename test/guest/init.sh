#!/bin/sh
# PID 1 of the Trivet test guest (busybox, no filesystem needed). It reports what tests assert on
# the serial console as key=value lines, then the marker TRIVET-GUEST-READY, then keeps a shell
# on ttyS0. Kernel command line options: trivet.ip=ADDR/PREFIX, trivet.heartbeat=1.
export PATH=/bin:/sbin

mount -t devtmpfs devtmpfs /dev
# The initramfs carries no /dev/console node (building it needs no root), so the kernel could not
# give init a console: take it now that devtmpfs exists.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

# Load order comes from modules.dep at build time; built-in drivers are not listed.
while read -r mod; do
  insmod "/lib/modules/$mod.ko" || echo "status=insmod-failed module=$mod"
done </etc/modules.order

ip=""
heartbeat=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    trivet.ip=*) ip="${arg#trivet.ip=}" ;;
    trivet.heartbeat=*) heartbeat="${arg#trivet.heartbeat=}" ;;
  esac
done

echo "kernel=$(uname -r)"

# Boot counter: one ASCII line in sector 8 of the raw disk, so a test can prove that what one
# boot wrote, the next boot reads.
counter_sector=8
if [ -b /dev/vda ]; then
  line=$(dd if=/dev/vda bs=512 skip=$counter_sector count=1 2>/dev/null | tr -d '\000' | head -n 1)
  case "$line" in
    TRIVET-BOOTCOUNT=*) count="${line#TRIVET-BOOTCOUNT=}" ;;
    *) count=0 ;;
  esac
  case "$count" in ''|*[!0-9]*) count=0 ;; esac
  printf 'TRIVET-BOOTCOUNT=%d\n' $((count + 1)) >/tmp/bootcount
  if dd if=/tmp/bootcount of=/dev/vda bs=512 seek=$counter_sector count=1 conv=sync,notrunc 2>/dev/null && sync; then
    written=ok
  else
    written=failed
  fi
  echo "disk=vda disk_bytes=$(blockdev --getsize64 /dev/vda) boot_count=$count write=$written"
else
  echo "disk=none"
fi

if [ -d /sys/class/net/eth0 ]; then
  ip link set lo up
  ip link set eth0 up
  [ -n "$ip" ] && ip addr add "$ip" dev eth0
  # The kernel reports the link up a moment after it is set up; wait at most ~3 s.
  tries=30
  while [ "$(cat /sys/class/net/eth0/operstate)" != up ] && [ $tries -gt 0 ]; do
    sleep 0.1
    tries=$((tries - 1))
  done
  echo "net=eth0 mac=$(cat /sys/class/net/eth0/address) state=$(cat /sys/class/net/eth0/operstate) ip=${ip:-none}"
else
  echo "net=none"
fi

# ACPI power button: any input event from the button device means a press; power off cleanly.
# The device is opened here, before the ready line, not in the background reader: evdev queues
# events only for files open when they happen, and a reader forked under load could open it
# after a press that followed the ready line (fds 3-9, one per button).
buttons=0
for ev in /sys/class/input/event*; do
  [ -e "$ev/device/name" ] || continue
  [ "$(cat "$ev/device/name")" = "Power Button" ] || continue
  [ $buttons -lt 7 ] || break
  fd=$((buttons + 3))
  buttons=$((buttons + 1))
  eval "exec $fd<\"/dev/input/${ev##*/}\""
  (
    eval "dd bs=24 count=1 of=/dev/null 2>/dev/null <&$fd"
    # The leading newline ends a shell prompt that may be on the line, so the marker starts one.
    printf '\nTRIVET-GUEST-POWEROFF reason=acpi-power-button\n'
    sync
    poweroff -f
  ) &
done
echo "acpi_power_button=$([ $buttons -gt 0 ] && echo ready || echo missing)"

if [ "$heartbeat" = 1 ]; then
  ( while :; do printf '\nheartbeat uptime=%s\n' "$(cut -d ' ' -f 1 /proc/uptime)"; sleep 3; done ) &
fi

echo "uptime=$(cut -d ' ' -f 1 /proc/uptime)"
echo "TRIVET-GUEST-READY"

# TERM=dumb: plain line input, no cursor-position queries in the console stream.
export PS1='guest# ' TERM=dumb
while :; do
  setsid cttyhack sh -i
  sleep 1
done
