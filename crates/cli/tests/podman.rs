//! Podman (Debian's package, CNI backend) with a `bridge` + `palisade`
//! configuration list, inside a lab host: containers of two tenants built
//! from a busybox image, real traffic between them, to the host, the
//! metadata service, the internet through the lab's uplink, a published
//! port reached from outside, and `podman rm` leaving nothing behind.
//!
//! Podman runs in the lab's network namespace and in private mount and pid
//! namespaces of its own (`unshare`), with tmpfs over `/run`, `/var/lib`,
//! `/etc/cni/net.d` and `/dev/shm`, its storage in a private directory and
//! its containers in a cgroup of this test's: nothing of it reaches the
//! machine, and its containers die with the pid namespace even if the test
//! fails.

mod common;

use common::Env;
use palisade_lab::World;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CONFIG: &str = "[network]\nuplink = \"up0\"\n[isolation]\ninter_sandbox = \"same-tenant\"\n";

/// Runs inside the private namespaces. Expects LAB (an empty directory),
/// OUT, PALISADE, PALISADE_CONFIG_FILE, PALISADE_STATE, TARBALL, CGP.
const SCRIPT: &str = r#"
set -euo pipefail
mount -t tmpfs -o mode=755 lab "$LAB"
mount -t tmpfs -o mode=755 lab-run /run
mount -t tmpfs -o mode=755 lab-varlib /var/lib
mount -t tmpfs -o mode=755 lab-cni /etc/cni/net.d
mount -t tmpfs -o mode=1777 lab-shm /dev/shm
mkdir -p /run/netns /run/lock /var/lib/cni /var/lib/containers "$LAB"/{root,runroot,tmp,net.d,plugins,conf}
ln -s "$PALISADE" "$LAB/plugins/palisade"
export TMPDIR="$LAB/tmp"
cat >"$LAB/conf/containers.conf" <<CONF
[containers]
netns = "bridge"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
log_driver = "k8s-file"
[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni", "$LAB/plugins"]
network_config_dir = "$LAB/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$LAB/tmp/events.log"
runtime = "runc"
tmp_dir = "$LAB/tmp"
static_dir = "$LAB/root/libpod"
volume_path = "$LAB/root/volumes"
CONF
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/runroot"\n' "$LAB" "$LAB" >"$LAB/conf/storage.conf"
: >"$LAB/conf/registries.conf"
export CONTAINERS_CONF="$LAB/conf/containers.conf"
export CONTAINERS_STORAGE_CONF="$LAB/conf/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$LAB/conf/registries.conf"
network() { # name bridge subnet tenant internet
  cat >"$LAB/net.d/$1.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "$1",
  "plugins": [
    { "type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$3" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "palisade", "tenant": "$4", "internet": $5,
      "configFile": "$PALISADE_CONFIG_FILE", "stateDir": "$PALISADE_STATE",
      "capabilities": { "portMappings": true } }
  ]
}
CONF
}
network blue palblue0 10.89.1.0/24 blue true
network red palred0 10.89.2.0/24 red false
pm() {
  podman --root "$LAB/root" --runroot "$LAB/runroot" --storage-driver vfs \
    --cgroup-manager cgroupfs --runtime runc --events-backend file \
    --network-backend cni --tmpdir "$LAB/tmp" "$@"
}
pal() { "$PALISADE" --config "$PALISADE_CONFIG_FILE" --state-dir "$PALISADE_STATE" "$@"; }
fail() {
  echo "FAIL: $*"
  echo "--- containers"; pm ps -a || true
  echo "--- palisade sandboxes"; pal sandbox list || true
  echo "--- nftables (counters show what dropped)"; nft list ruleset || true
  exit 1
}
pm import -q "$TARBALL" localhost/busybox:lab >/dev/null
RUN=(pm run -d -q --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --cgroup-parent="$CGP")
"${RUN[@]}" --name blue1 --network blue -p 8080:80 localhost/busybox:lab httpd -f -p 80 -h /www >/dev/null
"${RUN[@]}" --name blue2 --network blue localhost/busybox:lab httpd -f -p 80 -h /www >/dev/null
"${RUN[@]}" --name red1 --network red localhost/busybox:lab httpd -f -p 80 -h /www >/dev/null
ip_of() { pm inspect "$1" --format "{{.NetworkSettings.Networks.$2.IPAddress}}"; }
B1=$(ip_of blue1 blue); B2=$(ip_of blue2 blue); R1=$(ip_of red1 red)
echo "blue1=$B1 blue2=$B2 red1=$R1"
pal sandbox list --json >"$OUT/list.json"
pal verify >/dev/null || fail "verify with three containers"
# (busybox 1.35's wget -T crashes: the timeout applet bounds it instead.)
get() { pm exec "$1" timeout 3 wget -q -O - "$2" 2>/dev/null; }
reach() { [ "$(get "$1" "$2")" = hello-from-busybox ]; }
# Same tenant, same bridge.
reach blue1 "http://$B2/" || fail "blue1 cannot reach blue2: $(pm exec blue1 timeout 3 wget -O - "http://$B2/" 2>&1; echo "exit $?")"
# Across tenants, both ways.
! reach red1 "http://$B1/" || fail "red1 reached blue1"
! reach blue1 "http://$R1/" || fail "blue1 reached red1"
# The host (each bridge's gateway address, the uplink address), the
# metadata service, the internet. Listeners outside record what arrives.
for c in blue1 red1; do
  for dst in 10.89.1.1 10.89.2.1 198.51.100.1; do
    ! get "$c" "http://$dst:2222/" >/dev/null || fail "$c reached the host at $dst"
  done
  ! get "$c" "http://169.254.169.254/" >/dev/null || fail "$c reached the metadata service"
  get "$c" "http://203.0.113.10/" >/dev/null || true
done
echo ready >"$OUT/ready"
for i in $(seq 300); do [ -e "$OUT/go" ] && break; sleep 0.1; done
[ -e "$OUT/go" ] || fail "the test did not answer"
pm rm -f -t 0 blue1 blue2 red1 >/dev/null
# Every veth but the lab's uplink belonged to a container.
left=$(ip -o link show type veth | grep -v ': up0@' || true)
[ -z "$left" ] || fail "veths left: $left"
[ "$(pal sandbox list --json)" = "[]" ] || fail "sandboxes left: $(pal sandbox list)"
echo "PODMAN OK"
"#;

fn podman_present(test: &str) -> bool {
    let missing: Vec<&str> = [
        "/usr/bin/podman",
        "/usr/sbin/runc",
        "/bin/busybox",
        "/usr/lib/cni/bridge",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED {test}: missing {} (apt-get install podman runc busybox-static containernetworking-plugins)",
            missing.join(", ")
        );
    }
    missing.is_empty()
}

/// A busybox root filesystem as a tarball for `podman import`.
fn busybox_tarball(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "www"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "wget", "httpd", "nc", "sleep", "ip", "cat", "timeout"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(root.join("www/index.html"), "hello-from-busybox\n").unwrap();
    let tarball = dir.join("busybox.tar");
    let status = std::process::Command::new("tar")
        .args([
            "-C",
            root.to_str().unwrap(),
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-cf",
        ])
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar failed");
    tarball
}

/// Removes this test's cgroups (cgroupfs leaves them after the pid
/// namespace's processes die), retrying while the kernel lets go of them.
struct Cgroups(String);

impl Drop for Cgroups {
    fn drop(&mut self) {
        for _ in 0..50 {
            let mut left = Vec::new();
            for controller in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let top = controller.path().join(&self.0);
                if top.exists() {
                    left.push(top);
                }
            }
            if left.is_empty() {
                return;
            }
            for top in left {
                // Deepest first: a cgroup goes only once it has no children.
                let mut dirs = vec![top.clone()];
                let mut i = 0;
                while i < dirs.len() {
                    if let Ok(rd) = std::fs::read_dir(&dirs[i]) {
                        dirs.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
                    }
                    i += 1;
                }
                for d in dirs.iter().rev() {
                    let _ = std::fs::remove_dir(d);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "podman test: LEAK: cgroups /sys/fs/cgroup/*/{} remain",
            self.0
        );
    }
}

/// An HTTP GET over a TCP connection opened from inside the world.
fn http_get_from_world(world: &World, addr: SocketAddr) -> String {
    world
        .run(move || {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok::<_, std::io::Error>(body)
        })
        .unwrap()
        .unwrap_or_else(|e| format!("(failed: {e})"))
}

#[test]
fn podman_containers_of_two_tenants_are_isolated_by_palisade() {
    let test = "podman_containers_of_two_tenants_are_isolated_by_palisade";
    let Some(env) = Env::new(test, CONFIG) else {
        return;
    };
    if !podman_present(test) {
        return;
    }
    let world = env.lab.add_world().unwrap();
    let metadata = common::tcp_listener(&world.path(), World::METADATA4, 80);
    let internet = common::tcp_listener(&world.path(), World::INTERNET4, 80);
    let host = common::tcp_listener(&env.lab.path(), std::net::Ipv4Addr::UNSPECIFIED, 2222);

    let lab_dir = env.dir.join("podman-lab");
    let out = env.dir.join("out");
    std::fs::create_dir_all(&lab_dir).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let tarball = busybox_tarball(&env.dir);
    // Unique to this test run, like the state directory it is named after.
    let cgroup = env.dir.file_name().unwrap().to_str().unwrap().to_string();
    let _cgroups = Cgroups(cgroup.clone());
    let vars = [
        ("LAB", lab_dir.display().to_string()),
        ("OUT", out.display().to_string()),
        ("PALISADE", env!("CARGO_BIN_EXE_palisade").to_string()),
        (
            "PALISADE_CONFIG_FILE",
            env.dir.join("palisade.toml").display().to_string(),
        ),
        (
            "PALISADE_STATE",
            env.dir.join("state").display().to_string(),
        ),
        ("TARBALL", tarball.display().to_string()),
        ("CGP", format!("/{cgroup}")),
    ];
    let script = std::thread::scope(|s| {
        let run = s.spawn(|| {
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.lab
                .command(
                    Path::new("unshare"),
                    &[
                        "--mount",
                        "--pid",
                        "--fork",
                        "--mount-proc",
                        "--propagation",
                        "private",
                        "bash",
                        "-c",
                        SCRIPT,
                    ],
                    &vars,
                )
                .unwrap()
        });
        // While the containers run: the published port, from outside.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !out.join("ready").exists() && !run.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let published = out
            .join("ready")
            .exists()
            .then(|| http_get_from_world(&world, SocketAddr::new(World::LAB4.into(), 8080)));
        std::fs::write(out.join("go"), "").unwrap();
        (run.join().unwrap(), published)
    });
    let (output, published) = script;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("PODMAN OK"),
        "the Podman run failed:\n{stdout}\n{stderr}"
    );
    let published = published.expect("the containers came up");
    assert!(
        published.contains("hello-from-busybox"),
        "published port 8080 from outside: {published}"
    );

    // What palisade recorded while the containers ran.
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("list.json")).unwrap()).unwrap();
    let mut tenants: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["tenant"].as_str().unwrap(), v["kind"].as_str().unwrap()))
        .collect();
    tenants.sort();
    assert_eq!(
        tenants,
        vec![("blue", "cni"), ("blue", "cni"), ("red", "cni")],
        "{list}"
    );
    let exposed: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !v["exposures"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(exposed.len(), 1, "one container publishes a port: {list}");

    // Nothing reached the host or the metadata service; only blue reached
    // the internet, masqueraded.
    assert!(
        host.arrivals().is_empty(),
        "host reached: {:?}",
        host.arrivals()
    );
    assert!(
        metadata.arrivals().is_empty(),
        "metadata reached: {:?}",
        metadata.arrivals()
    );
    let sources: Vec<IpAddr> = internet.arrivals().iter().map(|a| a.peer.ip()).collect();
    assert_eq!(
        sources,
        vec![IpAddr::from(World::LAB4)],
        "internet arrivals"
    );

    // `podman rm` left nothing in the kernel or the store.
    env.assert_empty();
    let veths: Vec<String> = env
        .lab
        .run(|| palisade_link::Rtnl::open().unwrap().list_links().unwrap())
        .unwrap()
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && l.name != World::LAB_IFACE)
        .map(|l| l.name)
        .collect();
    assert!(veths.is_empty(), "veths left: {veths:?}");
}
