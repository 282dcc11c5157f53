#!/usr/bin/env bash
# Installs a Vulkan driver LiteRT's GPU accelerator can use on a machine
# without a GPU: Mesa's software driver (lavapipe), from Debian's packages.
# Debian 12 (bookworm) ships Mesa 22.3, which WebGPU refuses ("Vulkan
# shaderUniform*ArrayDynamicIndexing required"): take Mesa 25 from
# bookworm-backports. Debian 13 and later ship a recent Mesa.
#
#     bash tools/install_vulkan_driver.sh      (as root, or with sudo)
set -euo pipefail
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install_vulkan_driver: run as root (or install sudo)" >&2; exit 1; }
  sudo="sudo"
fi
. /etc/os-release
if [[ "${ID:-}" != "debian" ]]; then
  echo "install_vulkan_driver: not Debian (${ID:-unknown}); install mesa-vulkan-drivers (Mesa >= 23) and libvulkan1 yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [[ "${VERSION_CODENAME:-}" == "bookworm" ]]; then
  $sudo tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  $sudo apt-get update -q
  $sudo apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1
else
  $sudo apt-get update -q
  $sudo apt-get install -y -q mesa-vulkan-drivers libvulkan1
fi
