#!/usr/bin/env python3
"""Checks the Debian package as a user meets it.

    check_package.py PACKAGE_DIR VERSION

PACKAGE_DIR holds pickleway_VERSION_ARCH.deb, as `cpack -G DEB` made it. The
package is unpacked with dpkg-deb -x into a temporary root, and there:
its dependencies are declared; its pickleway says its version and the
plugin ABI of the headers it ships, lists the bundled plugins from its own lib/pickleway/plugins with no
options, checks every example config it ships, and runs a session of the
shipped demo programs, whose import of pickleway_io finds the packaged
module; the SDK is there; the systemd unit is the contract's, and
`systemd-analyze verify` (where it exists) has nothing to say of it.
Prints what failed and exits 1, or exits 0.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

PLUGINS = ["compress", "fifo", "firewall", "log", "newline", "redis", "spawn", "stdio", "tcp", "unix"]
EXAMPLES = "usr/share/doc/pickleway/examples"
UNIT = "usr/lib/systemd/system/pickleway@.service"
UNIT_LINES = [
    "ExecStart=/usr/bin/pickleway run /etc/pickleway/%i.yaml",
    "Restart=on-failure",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
]

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kwargs)


def main():
    package_dir, version = sys.argv[1:3]
    debs = glob.glob(os.path.join(package_dir, "pickleway_%s_*.deb" % version))
    if len(debs) != 1:
        print("expected one pickleway_%s_*.deb in %s, found %s" % (version, package_dir, debs))
        return 1
    deb = debs[0]
    depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    for library in ("libc6", "libstdc++6", "libyaml-cpp", "libssl3", "libzstd1", "liblz4-1", "zlib1g"):
        check(library in depends, "Depends names %s: %r" % (library, depends))

    root = tempfile.mkdtemp(prefix="pickleway-package-")
    try:
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
        binary = os.path.join(root, "usr/bin/pickleway")
        env = {k: v for k, v in os.environ.items() if k != "PICKLEWAY_PLUGIN_PATH"}
        env["PYTHONPATH"] = os.path.join(root, "usr/lib/python3/dist-packages")

        with open(os.path.join(root, "usr/include/pickleway/plugin.hpp")) as f:
            abi = re.search(r"abi_version = (\d+);", f.read()).group(1)
        got = run([binary, "--version"], env=env).stdout
        check(got == "pickleway %s (plugin ABI %s)\n" % (version, abi), "--version says %r" % got)

        listed = run([binary, "plugins"], env=env)
        plugin_dir = os.path.join(root, "usr/lib/pickleway/plugins")
        for name in PLUGINS:
            check("\t%s\t" % name in listed.stdout and
                  os.path.join(plugin_dir, "pickleway_%s.so" % name) in listed.stdout,
                  "plugins lists %s from %s: %s%s" % (name, plugin_dir, listed.stdout, listed.stderr))

        found = run([sys.executable, "-c", "import pickleway_io; print(pickleway_io.__file__)"],
                    env=env, cwd=root)
        check(found.stdout.strip() == os.path.join(root, "usr/lib/python3/dist-packages/pickleway_io.py"),
              "pickleway_io imports from the package: %s%s" % (found.stdout, found.stderr))

        examples = os.path.join(root, EXAMPLES)
        configs = sorted(glob.glob(os.path.join(examples, "configs", "*.yaml")))
        check(any(c.endswith("/demo.yaml") for c in configs), "the example configs are shipped")
        for config in configs:
            checked = run([binary, "check", os.path.relpath(config, examples)], env=env, cwd=examples)
            check(checked.returncode == 0, "check %s: %s" % (config, checked.stderr))

        # The demo's two programs bridged; they find pickleway_io in the package only.
        check(not os.path.exists(os.path.join(examples, "tools/python/pickleway_io.py")),
              "no pickleway_io beside the demo programs")
        session = run([binary, "bridge", "spawn:python3 tools/python/demo_producer.py",
                       "spawn:python3 tools/python/demo_consumer.py"], env=env, cwd=examples)
        check(session.returncode == 0 and "producer receives {'ack': 4" in session.stderr,
              "a session of the demo programs: status %d\n%s" % (session.returncode, session.stderr))

        for header in ("include/pickleway/plugin.hpp", "lib/libpickleway_sdk.a",
                       "lib/cmake/pickleway/picklewayConfig.cmake",
                       "lib/cmake/pickleway/PicklewayPlugin.cmake"):
            check(os.path.exists(os.path.join(root, "usr", header)), "the SDK has usr/%s" % header)

        unit_path = os.path.join(root, UNIT)
        if check(os.path.exists(unit_path), "the unit is at /" + UNIT):
            with open(unit_path) as f:
                unit = f.read().splitlines()
            for line in UNIT_LINES:
                check(line in unit, "the unit has %s" % line)
            if shutil.which("systemd-analyze"):
                # The host's systemd judges it, with the unpacked binary in
                # the place of /usr/bin/pickleway, which is not installed.
                instance = os.path.join(root, "pickleway@example.service")
                with open(instance, "w") as f:
                    f.write("\n".join(unit).replace("/usr/bin/pickleway", binary) + "\n")
                verified = run(["systemd-analyze", "verify", instance])
                said = (verified.stdout + verified.stderr).strip()
                check(verified.returncode == 0 and not said, "systemd-analyze verify: " + said)
            else:
                print("systemd-analyze is not installed: the unit is not verified")
    finally:
        shutil.rmtree(root)

    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
