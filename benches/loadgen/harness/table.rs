//! Turns the JSON lines of a matrix run into the Markdown summary: medians over rounds of
//! each round's own figure (a p50 is the median of the rounds' p50s), one table per
//! downstream, the mcp-orch-only figures, the targets with the measured ratios, and
//! every failure or error seen.

use serde_json::Value;

use super::stats::median;

/// Display order and meaning of the rows; unknown targets follow in name order.
pub const ROWS: &[(&str, &str)] = &[
    (
        "direct-stdio",
        "direct stdio (no proxy; in the `-x10` sets: 10 copies started at once)",
    ),
    ("direct-http", "direct Streamable HTTP (no proxy)"),
    ("direct-sse", "direct legacy SSE (no proxy)"),
    (
        "relay-stdio",
        "null relay, stdio (the floor for any stdio proxy: copies bytes, `loadgen relay`)",
    ),
    (
        "relay-http",
        "null relay, HTTP → stdio (the floor for any HTTP proxy: parse, swap ids, JSON answers)",
    ),
    ("orch-stdio", "mcp-orch, stdio face"),
    ("orch-mcp", "mcp-orch, `/mcp`"),
    ("orch-sse", "mcp-orch, `/sse`"),
    ("supergateway", "supergateway, Streamable HTTP `--stateful`"),
    ("supergateway-sse", "supergateway, SSE"),
    ("mcp-proxy-npm", "npm mcp-proxy, `/mcp`"),
    ("mcp-proxy-py", "PyPI mcp-proxy, `/mcp`"),
    (
        "alt-orch-stdio",
        "mcp-orch **alternative build** (`BENCH_ALT_ORCH`), stdio face",
    ),
    (
        "alt-orch-mcp",
        "mcp-orch **alternative build** (`BENCH_ALT_ORCH`), `/mcp`",
    ),
];

/// The peers the "≥ 4× the best peer" target compares against.
const PEERS: &[&str] = &[
    "supergateway",
    "supergateway-sse",
    "mcp-proxy-npm",
    "mcp-proxy-py",
];

/// All lines of a run.
pub struct Results {
    lines: Vec<Value>,
}

impl Results {
    /// Parses JSON lines, ignoring anything that is not a JSON object.
    pub fn parse(text: &str) -> Results {
        Results {
            lines: text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(Value::is_object)
                .collect(),
        }
    }

    fn matching<'a>(
        &'a self,
        downstream: &'a str,
        target: &'a str,
        measure: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.lines.iter().filter(move |l| {
            l["downstream"] == downstream && l["target"] == target && l["measure"] == measure
        })
    }

    /// Median over rounds of `field` in the lines of `measure` that also match `extra`.
    fn median(
        &self,
        downstream: &str,
        target: &str,
        measure: &str,
        extra: &[(&str, u64)],
        field: &str,
    ) -> Option<f64> {
        let mut values: Vec<f64> = self
            .matching(downstream, target, measure)
            .filter(|l| extra.iter().all(|(k, v)| l[*k].as_u64() == Some(*v)))
            .filter_map(|l| l[field].as_f64())
            .collect();
        median(&mut values)
    }

    fn targets(&self, downstream: &str) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for line in self.lines.iter().filter(|l| l["downstream"] == downstream) {
            if let Some(target) = line["target"].as_str()
                && !seen.iter().any(|s| s == target)
            {
                seen.push(target.to_owned());
            }
        }
        let rank = |t: &str| {
            ROWS.iter()
                .position(|(name, _)| *name == t)
                .unwrap_or(ROWS.len())
        };
        seen.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
        seen
    }

    fn downstreams(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for line in &self.lines {
            if let Some(d) = line["downstream"].as_str()
                && !seen.iter().any(|s| s == d)
            {
                seen.push(d.to_owned());
            }
        }
        seen
    }

    fn errors(&self, downstream: &str, target: &str) -> u64 {
        self.lines
            .iter()
            .filter(|l| l["downstream"] == downstream && l["target"] == target)
            .map(|l| l["errors"].as_u64().unwrap_or(0))
            .sum()
    }

    fn rounds(&self) -> usize {
        let mut rounds: Vec<u64> = self
            .lines
            .iter()
            .filter_map(|l| l["round"].as_u64())
            .collect();
        rounds.sort_unstable();
        rounds.dedup();
        rounds.len()
    }
}

fn label(target: &str) -> String {
    ROWS.iter()
        .find(|(name, _)| *name == target)
        .map(|(_, label)| (*label).to_owned())
        .unwrap_or_else(|| target.to_owned())
}

fn us(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "–".to_owned(),
    }
}

fn signed_us(value: Option<f64>) -> String {
    match value {
        Some(v) if v.abs() >= 100.0 => format!("{v:+.0}"),
        Some(v) => format!("{v:+.1}"),
        None => "–".to_owned(),
    }
}

fn count(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.0}"))
}

fn mib(kib: Option<f64>) -> String {
    kib.map_or_else(|| "–".to_owned(), |k| format!("{:.1}", k / 1024.0))
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.0}"))
}

/// The Markdown summary of a run.
pub fn render(results: &Results) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Medians over {} round(s). Latencies in µs, memory in MiB (RSS of the proxy process alone), cold start in ms.\n\n",
        results.rounds()
    ));
    for downstream in results.downstreams() {
        if downstream.contains("-x")
            || downstream.ends_with("-1000")
            || downstream.ends_with("-soak")
        {
            continue;
        }
        out.push_str(&main_table(results, &downstream));
        out.push('\n');
    }
    out.push_str(&special_table(results));
    out.push('\n');
    out.push_str(&targets_table(results));
    out.push('\n');
    out.push_str(&failures(results));
    out
}

fn main_table(results: &Results, downstream: &str) -> String {
    let mut out = format!("#### Downstream: {downstream}\n\n");
    out.push_str(
        "| target | echo p50 | Δp50 vs direct stdio | echo p99 | tools/list p50 | calls/s @1 | calls/s @8 | calls/s @32 | p50 / p99 @32 | calls/s 8 sessions | calls/s 32 sessions | cold start | RSS idle | RSS load | errors |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let direct = results.median(downstream, "direct-stdio", "call_seq", &[], "p50_us");
    for target in results.targets(downstream) {
        let t = target.as_str();
        let p50 = results.median(downstream, t, "call_seq", &[], "p50_us");
        let delta = match (p50, direct) {
            (Some(a), Some(b)) if t != "direct-stdio" => Some(a - b),
            _ => None,
        };
        let tp = |sessions: u64, in_flight: u64, field: &str| {
            results.median(
                downstream,
                t,
                "throughput",
                &[("sessions", sessions), ("in_flight", in_flight)],
                field,
            )
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} |\n",
            label(t),
            us(p50),
            signed_us(delta),
            us(results.median(downstream, t, "call_seq", &[], "p99_us")),
            us(results.median(downstream, t, "tools_list", &[], "p50_us")),
            count(tp(1, 1, "calls_per_s")),
            count(tp(1, 8, "calls_per_s")),
            count(tp(1, 32, "calls_per_s")),
            us(tp(1, 32, "p50_us")),
            us(tp(1, 32, "p99_us")),
            count(tp(8, 8, "calls_per_s")),
            count(tp(32, 32, "calls_per_s")),
            ms(results.median(downstream, t, "cold_start", &[], "ms")),
            mib(results.median(downstream, t, "rss_idle", &[], "kib")),
            mib(results.median(downstream, t, "rss_load", &[], "kib")),
            results.errors(downstream, t),
        ));
    }
    out
}

fn special_table(results: &Results) -> String {
    let mut out = String::from("#### Many servers, many tools, long runs\n\n");
    out.push_str("| downstream set | target | cold start | RSS idle | tools listed | tools/list p50 | tools/list p99 | soak calls/s | soak RSS first → last slice | errors |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for downstream in results.downstreams() {
        if !(downstream.contains("-x")
            || downstream.ends_with("-1000")
            || downstream.ends_with("-soak"))
        {
            continue;
        }
        for target in results.targets(&downstream) {
            let t = target.as_str();
            let d = downstream.as_str();
            let soak = results
                .matching(d, t, "soak")
                .filter_map(|l| {
                    let rss = l["rss_kib"].as_array()?;
                    Some((rss.first()?.as_f64()?, rss.last()?.as_f64()?))
                })
                .last();
            out.push_str(&format!(
                "| {d} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                label(t),
                ms(results.median(d, t, "cold_start", &[], "ms")),
                mib(results.median(d, t, "rss_idle", &[], "kib")),
                count(results.median(d, t, "cold_start", &[], "tools")),
                us(results.median(d, t, "tools_list", &[], "p50_us")),
                us(results.median(d, t, "tools_list", &[], "p99_us")),
                count(results.median(d, t, "soak", &[], "calls_per_s")),
                soak.map_or_else(
                    || "–".to_owned(),
                    |(a, b)| format!("{:.1} → {:.1}", a / 1024.0, b / 1024.0)
                ),
                results.errors(d, t),
            ));
        }
    }
    out
}

/// One line of the targets table.
fn verdict(goal: &str, measured: String, pass: Option<bool>) -> String {
    let result = match pass {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured (or too few calls)",
    };
    format!("| {goal} | {measured} | {result} |\n")
}

fn targets_table(results: &Results) -> String {
    let r = results;
    let f = "fixture";
    let mut out = String::from("#### The issue's targets (ratios within this run)\n\n");
    out.push_str("| target | measured | result |\n|---|---|---|\n");

    let direct_p50 = r.median(f, "direct-stdio", "call_seq", &[], "p50_us");
    let added = |target: &str| {
        r.median(f, target, "call_seq", &[], "p50_us")
            .zip(direct_p50)
            .map(|(a, b)| a - b)
    };
    let with_floor = |ours: Option<f64>, relay: &str| match added(relay) {
        Some(floor) => format!(
            "{} µs (null relay, the floor: {} µs)",
            signed_us(ours),
            signed_us(Some(floor))
        ),
        None => format!("{} µs", signed_us(ours)),
    };
    let mcp_added = added("orch-mcp");
    out.push_str(&verdict(
        "`/mcp` echo p50 adds ≤ 100 µs over direct stdio (fixture)",
        with_floor(mcp_added, "relay-http"),
        mcp_added.map(|v| v <= 100.0),
    ));
    for (sessions, what) in [(1u64, "one session"), (32, "32 sessions")] {
        let tp = |target: &str| {
            r.median(
                f,
                target,
                "throughput",
                &[("sessions", sessions), ("in_flight", 32)],
                "calls_per_s",
            )
        };
        let best_peer = PEERS
            .iter()
            .filter_map(|p| tp(p).map(|v| (v, *p)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let ours = tp("orch-mcp");
        let ratio = ours.zip(best_peer).map(|(o, (p, _))| o / p);
        out.push_str(&verdict(
            &format!("`/mcp` at 32 in flight ({what}) ≥ 4× the best peer's calls/s"),
            match (ours, best_peer, ratio) {
                (Some(o), Some((p, name)), Some(x)) => {
                    format!("{o:.0} vs {p:.0} ({name}) = {x:.2}×")
                }
                _ => "–".to_owned(),
            },
            ratio.map(|x| x >= 4.0),
        ));
    }
    let stdio_added = added("orch-stdio");
    out.push_str(&verdict(
        "stdio face adds ≤ 50 µs p50 (fixture)",
        with_floor(stdio_added, "relay-stdio"),
        stdio_added.map(|v| v <= 50.0),
    ));
    let tp32 = |target: &str| {
        r.median(
            f,
            target,
            "throughput",
            &[("sessions", 1), ("in_flight", 32)],
            "calls_per_s",
        )
    };
    let keep = tp32("orch-stdio")
        .zip(tp32("direct-stdio"))
        .map(|(a, b)| a / b);
    out.push_str(&verdict(
        "stdio face keeps ≥ 70 % of direct throughput at 32 in flight",
        keep.map_or_else(|| "–".to_owned(), |k| format!("{:.0} %", k * 100.0)),
        keep.map(|k| k >= 0.7),
    ));
    for (set, single) in [("fixture-x10", "fixture"), ("everything-x10", "everything")] {
        let ten = r.median(set, "orch-stdio", "cold_start", &[], "ms");
        let one = r.median(single, "direct-stdio", "cold_start", &[], "ms");
        let bare = r.median(set, "direct-stdio", "cold_start", &[], "ms");
        let ratio = ten.zip(one).map(|(a, b)| a / b);
        out.push_str(&verdict(
            &format!("cold start with 10 servers ({set}) ≤ 1.2× one server alone"),
            match (ten, one, ratio) {
                (Some(a), Some(b), Some(x)) => format!(
                    "{a:.0} ms vs {b:.0} ms = {x:.2}× (10 bare servers started at once, no proxy: {})",
                    bare.map_or_else(|| "–".to_owned(), |f| format!("{f:.0} ms = {:.2}×", f / b))
                ),
                _ => "–".to_owned(),
            },
            ratio.map(|x| x <= 1.2),
        ));
    }
    let list = r.median("fixture-1000", "orch-mcp", "tools_list", &[], "p50_us");
    out.push_str(&verdict(
        "`tools/list` of 1,000 tools over 20 servers, p50 ≤ 1 ms over HTTP",
        format!("{} µs", us(list)),
        list.map(|v| v <= 1000.0),
    ));
    for set in ["fixture-x10", "everything-x10"] {
        let rss = r.median(set, "orch-stdio", "rss_idle", &[], "kib");
        out.push_str(&verdict(
            &format!("RSS ≤ 15 MB idle with 10 downstreams ({set})"),
            format!("{} MiB", mib(rss)),
            rss.map(|k| k <= 15.0 * 1000.0 * 1000.0 / 1024.0),
        ));
    }
    for target in ["orch-mcp", "orch-stdio"] {
        let growth = r
            .matching("fixture-soak", target, "soak")
            .filter_map(|l| Some((l["growth_kib"].as_f64()?, l["calls"].as_u64()?)))
            .last();
        out.push_str(&verdict(
            &format!(
                "{}: no RSS growth over a 100,000-call run (≤ 1 MiB, first → last tenth)",
                label(target)
            ),
            growth.map_or_else(
                || "–".to_owned(),
                |(g, calls)| format!("{:+.2} MiB over {calls} calls", g / 1024.0),
            ),
            growth.and_then(|(g, calls)| (calls >= 100_000).then_some(g <= 1024.0)),
        ));
    }
    out
}

fn failures(results: &Results) -> String {
    let mut out = String::new();
    for line in &results.lines {
        let failed = line["measure"] == "failure";
        let errors = line["errors"].as_u64().unwrap_or(0);
        if !failed && errors == 0 {
            continue;
        }
        if out.is_empty() {
            out.push_str("#### Failures and errors\n\n");
        }
        let message = line["message"]
            .as_str()
            .or_else(|| line["first_error"].as_str())
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        out.push_str(&format!(
            "- {} / {} round {}: {} {}{}\n",
            line["downstream"].as_str().unwrap_or("?"),
            line["target"].as_str().unwrap_or("?"),
            line["round"],
            line["measure"].as_str().unwrap_or("?"),
            if failed {
                format!("in {}: ", line["phase"].as_str().unwrap_or("?"))
            } else {
                format!("{errors} error(s), first: ")
            },
            message,
        ));
    }
    out
}
