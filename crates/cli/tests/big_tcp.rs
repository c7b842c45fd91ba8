//! BIG TCP (`network.big_tcp`): palisade's veths and bridges pass packets
//! of up to 512 KiB in one piece, and a bulk TCP stream between two
//! sandboxes crosses the host and its firewall in such packets, intact, in
//! both modes; IPv6 keeps 64 KiB and arrives intact too. With the setting
//! off, the links keep the kernel's 64 KiB and no packet on the way is
//! bigger.

mod common;

use common::Env;
use palisade_lab::traffic::{Capture, CapturedFrame};
use palisade_link::{netns_path, run_in_netns, Rtnl, BIG_PACKET_SIZE, DEFAULT_PACKET_SIZE};
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Bytes each transfer moves: enough for the sender's window to grow past
/// 64 KiB many times over.
const TRANSFER: usize = 24 << 20;
const PORT: u16 = 5201;

fn config(mode: &str, big_tcp: bool) -> String {
    format!(
        "[network]\nmode = \"{mode}\"\nbig_tcp = {big_tcp}\n[isolation]\ninter_sandbox = \"same-tenant\"\n"
    )
}

/// The byte at offset `i` of a transfer: not a repeating short pattern, so
/// a reordered or duplicated chunk changes the digest.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Length and FNV-1a digest of what a reader got.
fn digest(mut r: impl Read) -> (usize, u64) {
    let mut buf = vec![0u8; 1 << 16];
    let (mut len, mut h) = (0usize, 0xcbf2_9ce4_8422_2325u64);
    loop {
        let n = r.read(&mut buf).expect("read the transfer");
        if n == 0 {
            return (len, h);
        }
        for &b in &buf[..n] {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        len += n;
    }
}

/// Sends [`TRANSFER`] bytes from sandbox `client` to `server` at `addr`
/// and checks they all arrive, in order.
fn transfer(client: &str, server: &str, addr: IpAddr) {
    let at = SocketAddr::new(addr, PORT);
    let listener = run_in_netns(&netns_path(server), move || TcpListener::bind(at))
        .unwrap()
        .unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept the transfer");
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        digest(conn)
    });
    let mut conn = run_in_netns(&netns_path(client), move || {
        TcpStream::connect_timeout(&at, Duration::from_secs(5))
    })
    .unwrap()
    .unwrap_or_else(|e| panic!("{client} cannot connect to {at}: {e}"));
    let data: Vec<u8> = (0..TRANSFER).map(pattern).collect();
    conn.write_all(&data).expect("send the transfer");
    conn.shutdown(Shutdown::Write).unwrap();
    let got = receiver.join().expect("receiver thread");
    assert_eq!(
        got,
        digest(&data[..]),
        "the transfer to {at} arrived damaged"
    );
}

/// Whether a frame carries a TCP packet over 64 KiB: its IP length field
/// cannot hold that, so the kernel leaves it 0 (IPv4 total length, IPv6
/// payload length).
fn is_big_tcp(f: &CapturedFrame) -> bool {
    let d = &f.data;
    let field = |at: usize| d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match d.get(12..14) {
        Some([0x08, 0x00]) => d.get(23) == Some(&6) && field(16) == Some(0),
        Some([0x86, 0xdd]) => field(18) == Some(0),
        _ => false,
    }
}

/// A field of `sandbox show NAME --json`'s `network`, as text.
fn network_field(env: &Env, name: &str, key: &str) -> String {
    let shown = env.json(&["sandbox", "show", name, "--json"]);
    shown["network"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no network.{key} in {shown}"))
        .to_string()
}

fn packet_size(rtnl: &mut Rtnl, name: &str) -> Option<u32> {
    rtnl.link(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no link {name}"))
        .gso_ipv4_max_size
}

fn run(test: &str, mode: &str, big_tcp: bool) {
    let Some(env) = Env::new(test, &config(mode, big_tcp)) else {
        return;
    };
    env.ok(&["init"]);
    let (a, b) = (env.name("a"), env.name("b"));
    for n in [&a, &b] {
        env.ok(&["sandbox", "create", n, "--tenant", "t"]);
    }
    let want = if big_tcp {
        BIG_PACKET_SIZE
    } else {
        DEFAULT_PACKET_SIZE
    };
    let shown = env.json(&["sandbox", "show", &a, "--json"]);
    let host_end = shown["network"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    let mut lab = Rtnl::open_in(&env.lab.path()).unwrap();
    let mut inside = Rtnl::open_in(&netns_path(&a)).unwrap();
    assert_eq!(packet_size(&mut inside, "eth0"), Some(want), "eth0 of {a}");
    assert_eq!(packet_size(&mut lab, &host_end), Some(want), "{host_end}");
    if let Some(bridge) = shown["network"]["bridge"].as_str() {
        assert_eq!(packet_size(&mut lab, bridge), Some(want), "{bridge}");
    }

    // Captured where the stream leaves the host, towards b: the packets
    // have crossed the host's routing, the firewall and (bridge mode) the
    // bridge by then; any link on the way that passes only 64 KiB would
    // have cut them up.
    let towards_b = network_field(&env, &b, "host_interface");
    let (v4, v6) = env.addresses(&b);
    for addr in [v4, v6] {
        let capture = Capture::start(&env.lab.path(), &towards_b).unwrap();
        transfer(&a, &b, addr.parse().unwrap());
        std::thread::sleep(Duration::from_millis(50));
        let frames = capture.frames();
        let big = frames
            .iter()
            .filter(|f| f.outgoing && is_big_tcp(f))
            .count();
        eprintln!(
            "{mode}, big_tcp = {big_tcp}, to {addr}: {} frames on {towards_b}, {big} sent over 64 KiB",
            frames.len()
        );
        // IPv6 keeps 64 KiB (see palisade_link::BIG_PACKET_SIZE).
        if big_tcp && addr.contains('.') {
            assert!(
                big > 0,
                "no packet over 64 KiB left through {towards_b} to {addr}"
            );
        } else {
            assert_eq!(
                big, 0,
                "a packet over 64 KiB left through {towards_b} to {addr}"
            );
        }
    }
    // The kernel's rules still match what palisade compiled (exit 0).
    env.ok(&["verify"]);
    // `status` says whether the links take big packets.
    let status = env.json(&["status", "--json"]);
    let feature = status["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "big-tcp")
        .unwrap_or_else(|| panic!("no big-tcp feature in {status}"))
        .clone();
    assert_eq!(feature["available"], true, "{feature}");
    let detail = feature["detail"].as_str().unwrap();
    if big_tcp {
        assert!(detail.contains("512 KiB"), "{detail}");
    } else {
        assert!(detail.starts_with("off"), "{detail}");
    }
    for n in [&a, &b] {
        env.ok(&["sandbox", "destroy", n]);
    }
}

#[test]
fn routed_mode_passes_big_packets_through_the_firewall() {
    run(
        "routed_mode_passes_big_packets_through_the_firewall",
        "routed",
        true,
    );
}

#[test]
fn bridge_mode_passes_big_packets_through_the_firewall() {
    run(
        "bridge_mode_passes_big_packets_through_the_firewall",
        "bridge",
        true,
    );
}

#[test]
fn with_big_tcp_off_no_packet_is_over_64_kib() {
    run("with_big_tcp_off_no_packet_is_over_64_kib", "bridge", false);
}

/// A tap passes 64 KiB, and so does a bridge once a tap is its port: the
/// veth sandboxes on it go back to 64 KiB (those there before the tap, and
/// those that come after), so that none sends packets the bridge would
/// cut into MTU-sized ones.
#[test]
fn a_tap_on_the_bridge_brings_its_veths_back_to_64_kib() {
    let Some(env) = Env::new(
        "a_tap_on_the_bridge_brings_its_veths_back_to_64_kib",
        &config("bridge", true),
    ) else {
        return;
    };
    env.ok(&["init"]);
    let (before, vm, after) = (env.name("before"), env.name("vm"), env.name("after"));
    let eth0_size =
        |name: &str| packet_size(&mut Rtnl::open_in(&netns_path(name)).unwrap(), "eth0");
    env.ok(&["sandbox", "create", &before, "--tenant", "t"]);
    assert_eq!(eth0_size(&before), Some(BIG_PACKET_SIZE));
    env.ok(&["sandbox", "create", &vm, "--tenant", "t", "--kind", "tap"]);
    let bridge = network_field(&env, &before, "bridge");
    let mut lab = Rtnl::open_in(&env.lab.path()).unwrap();
    assert_eq!(packet_size(&mut lab, &bridge), Some(DEFAULT_PACKET_SIZE));
    assert_eq!(eth0_size(&before), Some(DEFAULT_PACKET_SIZE), "{before}");
    env.ok(&["sandbox", "create", &after, "--tenant", "t"]);
    assert_eq!(eth0_size(&after), Some(DEFAULT_PACKET_SIZE), "{after}");

    // A stream between them arrives whole, in packets of at most 64 KiB.
    let towards = network_field(&env, &after, "host_interface");
    let capture = Capture::start(&env.lab.path(), &towards).unwrap();
    let (v4, _) = env.addresses(&after);
    transfer(&before, &after, v4.parse().unwrap());
    std::thread::sleep(Duration::from_millis(50));
    let frames = capture.frames();
    assert!(frames.iter().all(|f| !is_big_tcp(f)));
    // Not cut into MTU-sized ones either: 24 MiB in 64 KiB packets is a
    // few hundred frames (thousands when a bridge cuts them up).
    assert!(frames.len() < 3000, "{} frames", frames.len());
    env.ok(&["verify"]);
    for n in [&before, &vm, &after] {
        env.ok(&["sandbox", "destroy", n]);
    }
}

/// `init` puts the ports of a bridge deleted from under palisade back on
/// a new one, which starts at 64 KiB: it is raised again.
#[test]
fn init_raises_a_bridge_it_makes_again() {
    let Some(env) = Env::new(
        "init_raises_a_bridge_it_makes_again",
        &config("bridge", true),
    ) else {
        return;
    };
    env.ok(&["init"]);
    let a = env.name("a");
    env.ok(&["sandbox", "create", &a, "--tenant", "t"]);
    let bridge = network_field(&env, &a, "bridge");
    env.lab_ok("ip", &["link", "del", &bridge]);
    env.ok(&["init"]);
    let mut lab = Rtnl::open_in(&env.lab.path()).unwrap();
    assert_eq!(packet_size(&mut lab, &bridge), Some(BIG_PACKET_SIZE));
    env.ok(&["verify"]);
    env.ok(&["sandbox", "destroy", &a]);
}
