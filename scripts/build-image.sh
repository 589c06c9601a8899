#!/usr/bin/env bash
# Build one securestack test image from Debian's archive with debootstrap and
# docker import, unless an image with the same recipe hash already exists.
#
#   scripts/build-image.sh images/debian-12.env [--force]
#
# The recipe is the .env file, images/packages.txt, images/configure-rootfs.sh,
# images/files/ and this script; their hash is stored in the image label
# org.securestack.recipe-hash and compared before building.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
recipe=${1:?usage: build-image.sh images/NAME.env [--force]}
force=${2:-}
recipe=$(cd "$(dirname "$recipe")" && pwd)/$(basename "$recipe")

# shellcheck source=/dev/null
. "$recipe"
: "${IMAGE_TAG:?}" "${SUITE:?}"

recipe_hash=$(
    cd "$here"
    {
        sha256sum "$recipe" images/packages.txt images/configure-rootfs.sh scripts/build-image.sh
        find images/files -type f -print0 | sort -z | xargs -0 sha256sum
    } | sed "s#  $here/#  #" | sha256sum | cut -c1-16
)

current=$(docker image inspect --format '{{ index .Config.Labels "org.securestack.recipe-hash" }}' "$IMAGE_TAG" 2>/dev/null || true)
if [ "$current" = "$recipe_hash" ] && [ "$force" != "--force" ]; then
    echo "image $IMAGE_TAG is up to date (recipe $recipe_hash)"
    exit 0
fi

# Mirror: the one this host uses (read at run time, never written in the repo),
# else debootstrap's default.
mirror=""
security_mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    while read -r key value; do
        [ "$key" = "URIs:" ] || continue
        uri=${value%% *}
        case "$uri" in
            */debian-security) [ -n "$security_mirror" ] || security_mirror=$uri ;;
            */debian) [ -n "$mirror" ] || mirror=$uri ;;
        esac
    done < "$f"
done
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^def_mirror="\(.*\)"$/\1/p' /usr/sbin/debootstrap | head -n1)
fi
mirror=${mirror%/}
[ -n "$security_mirror" ] || security_mirror="${mirror}-security"

# Go through the host's apt cache when it answers (see scripts/setup.sh).
if timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3142' 2>/dev/null; then
    export http_proxy=http://127.0.0.1:3142
fi

includes=$(grep -v '^\s*#' "$here/images/packages.txt" | grep -v '^\s*$' | paste -sd, -)
work=$(mktemp -d /var/tmp/securestack-image.XXXXXX)
trap 'umount -R "$work/rootfs/proc" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "building $IMAGE_TAG: debootstrap $SUITE (recipe $recipe_hash)"
start=$(date +%s)
debootstrap --variant=minbase --include="$includes" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$SUITE" "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 || {
        tail -n 40 "$work/debootstrap.log" "$work/rootfs/debootstrap/debootstrap.log" 2>/dev/null
        echo "debootstrap of $SUITE failed" >&2
        exit 1
    }

install -m 0755 "$here/images/files/apt-proxy-detect" "$work/rootfs/usr/local/bin/apt-proxy-detect"
install -m 0644 "$here/images/files/01securestack-proxy" "$work/rootfs/etc/apt/apt.conf.d/01securestack-proxy"
install -m 0755 "$here/images/configure-rootfs.sh" "$work/rootfs/configure-rootfs.sh"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SUITE="$SUITE" MIRROR="$mirror" \
    SECURITY_MIRROR="$security_mirror" chroot "$work/rootfs" /configure-rootfs.sh
rm -f "$work/rootfs/configure-rootfs.sh"

tar --numeric-owner --xattrs -C "$work/rootfs" -c . | docker import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=docker' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.securestack.recipe-hash=$recipe_hash" \
    --change "LABEL org.securestack.suite=$SUITE" \
    - "$IMAGE_TAG" > /dev/null
echo "built $IMAGE_TAG in $(( $(date +%s) - start ))s"
