//! palisade under test: in-process through the engine (what the daemon and
//! any long-lived caller use), and as one `palisade` process per call.
//!
//! The series itself is "attach to a namespace that already exists": the
//! namespace is made untimed (`prepare`), as a runtime hands one over, and
//! palisade adopts it. At every level the other figures are taken on the
//! same lab: a sandbox with its own new namespace, a policy-only change,
//! `verify`, `init` after the tables were deleted, the CLI, and memory.

use crate::lab::SCRATCH;
use crate::proc::{own_memory_kib, run_peak_rss, run_timed};
use crate::series::{median, ms, Point, Subject};
use anyhow::{bail, Context, Result};
use palisade::engine::{CreateRequest, DestroyOutcome, Engine, UpdateRequest};
use palisade_core::config::{Config, Mode};
use palisade_core::exposure::PortRange;
use palisade_core::model::SandboxKind;
use palisade_core::policy::Proto;
use palisade_core::tenant_rule::{RuleAction, TenantRule};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lab's configuration in `mode`: an uplink (a dummy) so that half the
/// sandboxes can have internet egress, and same-tenant traffic allowed so
/// the data plane test has two sandboxes that may talk.
pub fn config_text(mode: Mode) -> String {
    let mode = mode.name();
    format!(
        "[network]\nmode = \"{mode}\"\nuplink = \"up0\"\n[isolation]\ninter_sandbox = \"same-tenant\"\n"
    )
}

/// Tenants the filled sandboxes are spread over.
const TENANTS: usize = 50;

/// Pause after the extra figures, for the kernel to free the namespaces they
/// deleted before the timed attaches (see the end of `measure_extras`).
const NAMESPACE_SETTLE: Duration = Duration::from_secs(2);

/// Batches of detaches timed for the amortised figures (their median is
/// reported): one batch is one sample of the batch deletion's cost.
pub const BATCH_REPS: usize = 3;

pub struct Palisade {
    engine: Option<Engine>,
    config: Config,
    config_path: PathBuf,
    state_dir: PathBuf,
    cli: PathBuf,
    reps: usize,
    /// The sandboxes present (by `name` index), oldest first.
    order: VecDeque<usize>,
}

fn name(i: usize) -> String {
    format!("c{i}")
}

/// The policy of filled sandbox `i`: every other one has internet egress
/// narrowed to one port, so the sets hold both kinds.
fn request(i: usize, name: String) -> CreateRequest {
    let internet = i.is_multiple_of(2);
    CreateRequest {
        name,
        tenant: format!("t{}", i % TENANTS),
        kind: SandboxKind::Netns,
        internet,
        allow: if internet {
            vec!["tcp:443".into()]
        } else {
            vec![]
        },
    }
}

impl Palisade {
    pub fn new(reps: usize, mode: Mode) -> Result<Palisade> {
        crate::lab::add_uplink("up0")?;
        let dir = Path::new(SCRATCH).join("palisade");
        std::fs::create_dir_all(&dir)?;
        let config_path = dir.join("palisade.toml");
        let text = config_text(mode);
        std::fs::write(&config_path, &text)?;
        let config = Config::from_toml(&config_path.display().to_string(), &text)?;
        let state_dir = dir.join("state");
        let (engine, _) = Engine::open_init(config.clone(), &state_dir)?;
        let cli = std::env::current_exe()?
            .parent()
            .context("the benchmark's directory")?
            .join("palisade");
        if !cli.exists() {
            bail!(
                "{} not found: build it with the benchmark (cargo build --release -p palisade -p palisade-bench)",
                cli.display()
            );
        }
        Ok(Palisade {
            engine: Some(engine),
            config,
            config_path,
            state_dir,
            cli,
            reps,
            order: VecDeque::new(),
        })
    }

    fn engine(&mut self) -> Result<&mut Engine> {
        if self.engine.is_none() {
            let (engine, _) = Engine::open(self.config.clone(), &self.state_dir)?;
            self.engine = Some(engine);
        }
        Ok(self.engine.as_mut().expect("just opened"))
    }

    fn create(&mut self, req: &CreateRequest) -> Result<()> {
        self.engine()?.create(req)?;
        Ok(())
    }

    fn destroy(&mut self, name: &str) -> Result<()> {
        match self.engine()?.destroy(name)? {
            DestroyOutcome::Destroyed(_) => Ok(()),
            DestroyOutcome::NotFound => bail!("sandbox {name} was not there to destroy"),
        }
    }

    /// Runs the CLI with the lab's config and state; returns its wall time.
    fn cli(&self, args: &[&str]) -> Result<Duration> {
        Ok(run_timed(&self.cli, &self.cli_args(args), &[], None)?.1)
    }

    fn cli_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = vec![
            "--config",
            self.config_path.to_str().expect("utf-8 path"),
            "--state-dir",
            self.state_dir.to_str().expect("utf-8 path"),
        ];
        full.extend_from_slice(args);
        full
    }

    fn delete_tables(&self) -> Result<()> {
        for family in palisade_core::compile::families(&self.config) {
            crate::proc::run_quiet(
                Path::new("nft"),
                &[
                    "delete",
                    "table",
                    family.keyword(),
                    palisade_core::element::TABLE,
                ],
            )?;
        }
        Ok(())
    }

    /// Figures at this level besides the adopted attach/detach.
    fn measure_extras(&mut self, present: usize, point: &mut Point) -> Result<()> {
        let reps = self.reps;
        let push = |point: &mut Point, what: &str, mut v: Vec<f64>| {
            let m = median(&mut v);
            eprintln!("[palisade]   {what}: {m:.2}");
            point.extra.push((what.to_string(), m));
        };

        // A sandbox with its own new namespace, created and destroyed, then
        // the kernel's floor under it, each after the same pause (the
        // namespaces deleted before either are freed in the background).
        std::thread::sleep(NAMESPACE_SETTLE);
        let own = request(1, "own".into());
        let (mut create, mut destroy) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t0 = Instant::now();
            self.create(&own)?;
            let t1 = Instant::now();
            self.destroy("own")?;
            create.push(ms(t1 - t0));
            destroy.push(ms(t1.elapsed()));
        }
        push(point, "own_create_ms", create);
        push(point, "own_destroy_ms", destroy);
        std::thread::sleep(NAMESPACE_SETTLE);
        let (floor_create, floor_destroy) =
            crate::floor::own_namespace_ms(reps, self.config.network.mode)?;
        push(point, "floor_own_create_ms", vec![floor_create]);
        push(point, "floor_own_destroy_ms", vec![floor_destroy]);

        // A detach only retires the veth; every RETIRED_LINKS_BATCH-th one
        // deletes the batch. A whole batch of adopted-namespace detaches,
        // the deleting one included, divided by its size, is the honest
        // cost per detach; the median of BATCH_REPS batches is reported.
        let batch = palisade::engine::RETIRED_LINKS_BATCH as usize;
        let mut made = Vec::with_capacity(BATCH_REPS);
        for _ in 0..BATCH_REPS {
            // After the floor's namespaces (or the last batch's) are freed:
            // a detach waits for the routing lock while the kernel frees
            // one (about 7 ms each at 10,000 namespaces).
            std::thread::sleep(NAMESPACE_SETTLE);
            self.engine()?.reap_retired_links()?;
            let names: Vec<String> = (0..batch).map(|i| format!("batch{i}")).collect();
            for (i, n) in names.iter().enumerate() {
                palisade_link::create_named_netns(n)?;
                self.create(&request(i + 2, n.clone()))?;
            }
            let t0 = Instant::now();
            for n in &names {
                self.destroy(n)?;
            }
            made.push(ms(t0.elapsed()) / batch as f64);
            for n in &names {
                palisade_link::delete_named_netns(n)?;
            }
        }
        push(point, "detach_amortised_ms", made);

        // The same, for the oldest sandboxes present. Their namespaces have
        // the highest ids (palisade_core::names::netns_id), which the
        // kernel's walk for each notification about their links reaches
        // last; the timed detaches above are of the newest. They are
        // attached again afterwards, in namespaces that keep their ids, so
        // they stay the oldest.
        if self.order.len() >= batch {
            let mut oldest_reps = Vec::with_capacity(BATCH_REPS);
            for _ in 0..BATCH_REPS {
                // After the last batch's namespaces are freed: with 10,000
                // present, one detach of a batch waited 123 ms for them.
                std::thread::sleep(NAMESPACE_SETTLE);
                self.engine()?.reap_retired_links()?;
                let oldest: Vec<usize> = self.order.drain(..batch).collect();
                let t0 = Instant::now();
                for &i in &oldest {
                    self.destroy(&name(i))?;
                }
                oldest_reps.push(ms(t0.elapsed()) / batch as f64);
                for &i in &oldest {
                    self.create(&request(i, name(i)))?;
                }
                for i in oldest.into_iter().rev() {
                    self.order.push_front(i);
                }
            }
            push(point, "detach_oldest_amortised_ms", oldest_reps);
        }

        // Policy-only change: internet egress toggled on one sandbox.
        palisade_link::create_named_netns("upd")?;
        self.create(&request(1, "upd".into()))?;
        // Widening (internet on) is one element batch; narrowing (off) also
        // moves the sandbox to its next policy generation in that batch, so
        // the connections it forbids end.
        let (mut widen, mut narrow) = (Vec::new(), Vec::new());
        for r in 0..2 * reps {
            let on = r.is_multiple_of(2);
            let req = UpdateRequest {
                internet: Some(on),
                ..Default::default()
            };
            let t0 = Instant::now();
            let outcome = self.engine()?.update("upd", &req)?;
            let took = ms(t0.elapsed());
            if on {
                widen.push(took)
            } else {
                narrow.push(took)
            }
            if !outcome.changed {
                bail!("update {r} of sandbox upd changed nothing");
            }
        }
        push(point, "update_narrow_ms", narrow);
        push(point, "update_ms", widen);

        // A tenant deny rule: adding it narrows every sandbox of the
        // tenant (each moves to its next policy generation in the rule's
        // batch); removing it is one element.
        let tenant = "t0";
        let members = (0..present).filter(|i| i % TENANTS == 0).count();
        let deny = TenantRule {
            action: RuleAction::Deny,
            proto: Proto::Tcp,
            ports: Some(PortRange::single(8443)),
            cidr: "198.51.100.0/24".parse().expect("a CIDR"),
        };
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        for _ in 0..reps.min(5) {
            let t0 = Instant::now();
            let view = self.engine()?.add_tenant_rule(tenant, deny)?;
            added.push(ms(t0.elapsed()));
            let t0 = Instant::now();
            self.engine()?.remove_tenant_rule(tenant, view.id)?;
            removed.push(ms(t0.elapsed()));
        }
        point.extra.push(("tenant_members".into(), members as f64));
        push(point, "tenant_deny_add_ms", added);
        push(point, "tenant_deny_remove_ms", removed);

        // verify of everything, in-process; fewer runs where it is long.
        let runs = if present >= 1000 { 3 } else { reps.min(5) };
        let mut verify = Vec::new();
        for _ in 0..runs {
            let t0 = Instant::now();
            let report = self.engine()?.verify(None)?;
            verify.push(ms(t0.elapsed()));
            if !report.ok() {
                bail!(
                    "verify found differences at {present} sandboxes: {:?}",
                    report.differences.first()
                );
            }
        }
        push(point, "verify_ms", verify);

        // init after palisade's tables were deleted: the full reconcile.
        let mut init = Vec::new();
        for _ in 0..runs {
            self.delete_tables()?;
            self.engine = None;
            let t0 = Instant::now();
            let (engine, report) = Engine::open_init(self.config.clone(), &self.state_dir)?;
            init.push(ms(t0.elapsed()));
            if !report.table_rebuilt || !report.unfixable.is_empty() {
                bail!("init after the tables were deleted did not rebuild cleanly: {report:?}");
            }
            self.engine = Some(engine);
        }
        push(point, "init_ms", init);

        // init with the tables in place and nothing to repair, as when a
        // daemon restarts: compared with the store, not replaced.
        let mut in_place = Vec::new();
        for _ in 0..runs {
            self.engine = None;
            let t0 = Instant::now();
            let (engine, report) = Engine::open_init(self.config.clone(), &self.state_dir)?;
            in_place.push(ms(t0.elapsed()));
            if report.table_rebuilt || !report.unfixable.is_empty() {
                bail!("init with the tables in place did not leave them as they were: {report:?}");
            }
            self.engine = Some(engine);
        }
        push(point, "init_in_place_ms", in_place);

        // What every CLI command pays before its operation: the state
        // lock, the store, two netlink sockets and the repair check.
        let mut open = Vec::new();
        for _ in 0..reps {
            self.engine = None;
            let t0 = Instant::now();
            let (engine, _) = Engine::open(self.config.clone(), &self.state_dir)?;
            open.push(ms(t0.elapsed()));
            self.engine = Some(engine);
        }
        push(point, "engine_open_ms", open);

        // What a daemon request pays instead: the lock taken again and the
        // repair check, on the store and sockets it kept.
        let mut resume = Vec::new();
        for _ in 0..reps {
            let idle = self.engine.take().context("an open engine")?.idle();
            let t0 = Instant::now();
            let (engine, _) = idle.resume()?;
            resume.push(ms(t0.elapsed()));
            self.engine = Some(engine);
        }
        push(point, "engine_resume_ms", resume);

        point
            .extra
            .push(("rss_mib".into(), own_memory_kib("VmRSS")? as f64 / 1024.0));

        // One process per call: the engine's lock is released meanwhile.
        self.engine = None;
        palisade_link::create_named_netns("cli")?;
        let (mut create, mut destroy, mut update) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..reps {
            create.push(ms(
                self.cli(&["sandbox", "create", "cli", "--tenant", "t1"])?
            ));
            update.push(ms(self.cli(&[
                "sandbox",
                "update",
                "upd",
                if r.is_multiple_of(2) {
                    "--internet"
                } else {
                    "--no-internet"
                },
            ])?));
            destroy.push(ms(self.cli(&["sandbox", "destroy", "cli"])?));
        }
        palisade_link::delete_named_netns("cli")?;
        push(point, "cli_create_ms", create);
        push(point, "cli_destroy_ms", destroy);
        push(point, "cli_update_ms", update);
        let (rss, took) = run_peak_rss(&self.cli, &self.cli_args(&["verify"]))?;
        point.extra.push(("cli_verify_ms".into(), ms(took)));
        point
            .extra
            .push(("cli_verify_peak_rss_mib".into(), rss as f64 / 1024.0));
        let (rss, _) = run_peak_rss(&self.cli, &self.cli_args(&["sandbox", "list"]))?;
        point
            .extra
            .push(("cli_list_peak_rss_mib".into(), rss as f64 / 1024.0));

        self.destroy("upd")?;
        palisade_link::delete_named_netns("upd")?;
        // The namespaces deleted above are freed by the kernel in the
        // background (`cleanup_net`, holding the routing lock while it
        // unregisters their veths, each a walk of the host's IPv6 routes):
        // left to overlap the timed attaches that follow, it would be
        // charged to them.
        std::thread::sleep(NAMESPACE_SETTLE);

        // The kernel's floor under the timed attaches that follow, on the
        // same host and after the same pause; then the pause again, for
        // the kernel to free what the floor deleted.
        let floor = crate::floor::attach_ms(reps, self.config.network.mode)?;
        eprintln!("[palisade]   floor_attach_ms: {floor:.2}");
        point.extra.push(("floor_attach_ms".into(), floor));
        std::thread::sleep(NAMESPACE_SETTLE);
        Ok(())
    }

    /// Two sandboxes of one tenant moving TCP with iperf3, with the whole
    /// table loaded, against the same pair with palisade's tables deleted;
    /// rounds alternate so drift on the shared machine hits both alike.
    pub fn dataplane(&mut self, rounds: usize, seconds: u32) -> Result<crate::dataplane::Ratio> {
        for n in ["dp-a", "dp-b"] {
            palisade_link::create_named_netns(n)?;
            self.create(&CreateRequest {
                name: n.into(),
                tenant: "dp".into(),
                kind: SandboxKind::Netns,
                internet: false,
                allow: vec![],
            })?;
        }
        let server_ip = self
            .engine()?
            .sandbox_view("dp-b")?
            .network
            .context("dp-b has an address")?
            .ipv4;
        let server_ip = server_ip.split('/').next().unwrap_or_default().to_string();
        let pair = crate::dataplane::Pair::start(
            palisade_link::netns_path("dp-a"),
            palisade_link::netns_path("dp-b"),
            server_ip,
        )?;
        use crate::dataplane::Firewall;
        let states = [Firewall::Loaded, Firewall::Off, Firewall::ConntrackOnly];
        let ratio =
            crate::dataplane::alternate(&pair, rounds, seconds, "palisade", &states, |state| {
                // From any state: palisade's tables and the reference
                // table go first, then the state's own.
                let tables = listed_tables()?;
                let palisade = format!("table inet {}", palisade_core::element::TABLE);
                if tables.contains(&palisade) {
                    self.delete_tables()?;
                }
                if tables.contains(&format!("table inet {CONNTRACK_FLOOR_TABLE}")) {
                    crate::proc::run_quiet(
                        Path::new("nft"),
                        &["delete", "table", "inet", CONNTRACK_FLOOR_TABLE],
                    )?;
                }
                match state {
                    Firewall::Loaded => {
                        self.engine = None;
                        let (engine, _) = Engine::open_init(self.config.clone(), &self.state_dir)?;
                        self.engine = Some(engine);
                    }
                    Firewall::Off => {}
                    Firewall::ConntrackOnly => {
                        let script = conntrack_floor();
                        let nft = Path::new("nft");
                        crate::proc::run_timed(nft, &["-f", "-"], &[], Some(script.as_bytes()))?;
                    }
                }
                Ok(())
            })?;
        drop(pair);
        for n in ["dp-a", "dp-b"] {
            self.destroy(n)?;
            palisade_link::delete_named_netns(n)?;
        }
        Ok(ratio)
    }
}

impl Subject for Palisade {
    fn prepare(&mut self, i: usize) -> Result<()> {
        palisade_link::create_named_netns(&name(i))?;
        Ok(())
    }
    fn attach(&mut self, i: usize) -> Result<()> {
        self.create(&request(i, name(i)))?;
        self.order.push_back(i);
        Ok(())
    }
    fn detach(&mut self, i: usize) -> Result<()> {
        self.destroy(&name(i))?;
        // The timed detach is of the newest: keep its bookkeeping O(1).
        if self.order.back() == Some(&i) {
            self.order.pop_back();
        } else {
            self.order.retain(|&present| present != i);
        }
        Ok(())
    }
    fn unprepare(&mut self, i: usize) -> Result<()> {
        palisade_link::delete_named_netns(&name(i))?;
        Ok(())
    }
    fn at_level(&mut self, present: usize, point: &mut Point) -> Result<()> {
        self.measure_extras(present, point)
    }
}

/// The data plane's reference: conntrack with one rule, in a table of its
/// own. Every stateful firewall pays at least this per packet.
const CONNTRACK_FLOOR_TABLE: &str = "palisade_bench_conntrack";

fn conntrack_floor() -> String {
    format!(
        "table inet {CONNTRACK_FLOOR_TABLE} {{\n\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t}}\n}}\n"
    )
}

/// `nft list tables`, one `table <family> <name>` per entry.
fn listed_tables() -> Result<Vec<String>> {
    let out = crate::proc::run_quiet(Path::new("nft"), &["list", "tables"])?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.trim().to_string())
        .collect())
}
