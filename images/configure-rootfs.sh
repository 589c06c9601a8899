#!/bin/sh
# Runs inside the debootstrapped root (chroot) of a securestack test image.
# Inputs (environment): SUITE, MIRROR, SECURITY_MIRROR.
# Makes systemd boot cleanly as PID 1 in a container and apt use the host's cache.
set -eu

: "${SUITE:?}" "${MIRROR:?}" "${SECURITY_MIRROR:?}"

# Package sources: the same mirror the image was built from.
rm -f /etc/apt/sources.list
cat > /etc/apt/sources.list.d/debian.sources <<SOURCES
Types: deb
URIs: ${MIRROR}
Suites: ${SUITE} ${SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${SECURITY_MIRROR}
Suites: ${SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

# No docker-clean style hooks: keep apt's normal cache behaviour.
rm -f /etc/apt/apt.conf.d/docker-clean /etc/apt/apt.conf.d/docker-*
chmod 0755 /usr/local/bin/apt-proxy-detect

# Units that make no sense or fail in a container.
for unit in \
    getty@tty1.service getty.target serial-getty@.service console-getty.service \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service \
    systemd-modules-load.service systemd-remount-fs.service systemd-firstboot.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount \
    proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    systemd-binfmt.service systemd-sysctl.service systemd-hwdb-update.service \
    systemd-journald-audit.socket systemd-pcrphase.service \
    systemd-pcrphase-sysinit.service systemd-pcrphase-initrd.service \
    apt-daily.timer apt-daily-upgrade.timer apt-daily.service \
    apt-daily-upgrade.service e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer man-db.timer
do
    ln -sf /dev/null "/etc/systemd/system/${unit}"
done
systemctl set-default multi-user.target

# Each container gets its own machine id at boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
mkdir -p /var/lib/dbus
ln -sf /etc/machine-id /var/lib/dbus/machine-id

# Hostname and hosts are provided by docker.
rm -f /etc/hostname

# Lean image: no package lists or downloaded packages, no docs' caches.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/* \
    /var/cache/debconf/*-old /var/lib/dpkg/*-old /tmp/* /var/tmp/*
