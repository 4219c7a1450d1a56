//! `loadgen`: the load generator of mcp-orch's benchmark matrix (a `harness = false` bench).
//!
//! `loadgen run` starts one target (a stdio command, or a process serving Streamable HTTP or
//! legacy SSE on a free loopback port), measures it (see `harness/measure.rs` for the
//! phases) and prints one JSON line per measurement; `loadgen table FILE` turns the lines of
//! a whole matrix run into the Markdown summary. `benches/run.sh` drives both; run alone:
//!
//! ```text
//! cargo bench --bench loadgen -- run --target orch-mcp --wire http \
//!     --url 'http://127.0.0.1:{port}/mcp' --tool fx__echo --arg text \
//!     -- target/release/mcp-orch --mcp-config cfg.json --port '{port}' --no-stdio
//! ```
//!
//! `loadgen relay --listen stdio|PORT -- CMD` is a null proxy (see `harness/relay.rs`): the rows
//! that show what one more process in the path costs on this machine, whoever it is.
//!
//! Run without arguments (as `cargo test --all-targets` does) it does nothing. It never
//! talks to anything but 127.0.0.1 and stops by itself (`--max-seconds`).

mod harness;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use harness::measure::{CallSpec, Hooks, Plan, Reporter};
use harness::process::Launch;
use harness::session::Wire;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "mcp-orch benchmark load generator (raw JSON-RPC)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a target, measure it, print JSON lines.
    Run(Box<RunArgs>),
    /// A null proxy in front of a stdio command: the floor under every proxy row.
    Relay {
        /// `stdio`, or the loopback port to serve Streamable HTTP on.
        #[arg(long)]
        listen: String,
        /// The downstream command (stdio).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print the Markdown summary of a file of JSON lines.
    Table {
        /// The JSON lines of a matrix run.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Row name in the tables (`orch-mcp`, `supergateway`, ...).
    #[arg(long)]
    target: String,
    /// Downstream name in the tables (`fixture`, `everything`, `fixture-x10`, ...).
    #[arg(long, default_value = "fixture")]
    downstream: String,
    /// Round number of a matrix run.
    #[arg(long, default_value_t = 1)]
    round: u32,
    /// stdio, http (Streamable HTTP) or sse (legacy HTTP+SSE).
    #[arg(long, value_parser = Wire::parse)]
    wire: Wire,
    /// URL for http/sse; `{port}` becomes a free port also given to the command.
    #[arg(long)]
    url: Option<String>,
    /// Extra environment for the command, `KEY=VALUE` (`{port}` is filled in).
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Environment variables the command must not inherit.
    #[arg(long = "env-remove")]
    env_remove: Vec<String>,
    /// The cheap tool to call.
    #[arg(long, default_value = "echo")]
    tool: String,
    /// Its string argument that carries each call's marker.
    #[arg(long, default_value = "text")]
    arg: String,
    /// The first tools/list must list at least this many tools (cold start waits for it).
    #[arg(long, default_value_t = 1)]
    expect_tools: usize,
    /// Per-request limit, in ms.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Quiet time before measuring idle memory, in ms.
    #[arg(long, default_value_t = 1000)]
    idle_ms: u64,
    /// Sequential tools/list calls.
    #[arg(long, default_value_t = 50)]
    list: usize,
    /// Unmeasured calls before the sequential ones.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Sequential tools/call calls.
    #[arg(long, default_value_t = 2000)]
    seq: usize,
    /// In-flight levels on one session.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    in_flight: Vec<usize>,
    /// Session counts (one call in flight each; ignored for stdio).
    #[arg(long, value_delimiter = ',', default_value = "8,32")]
    sessions: Vec<usize>,
    /// Calls per in-flight or session level.
    #[arg(long, default_value_t = 3000)]
    calls: usize,
    /// Calls of the soak run (0 = none).
    #[arg(long, default_value_t = 0)]
    soak: usize,
    /// In flight during the soak run.
    #[arg(long, default_value_t = 32)]
    soak_in_flight: usize,
    /// Shell command run after the warm-up, before the measured phases (`{pid}` = target).
    #[arg(long)]
    exec_after_warmup: Option<String>,
    /// Shell command run after the measured phases, before shutdown (`{pid}` = target).
    #[arg(long)]
    exec_after_run: Option<String>,
    /// Time the target gets to exit by itself at the end, in ms (then SIGTERM, SIGKILL).
    #[arg(long, default_value_t = 3000)]
    stop_grace_ms: u64,
    /// Only measure the cold start of this many copies of the (stdio) command started at
    /// once, without a proxy: the floor for mcp-orch's cold start with that many servers.
    #[arg(long, default_value_t = 1)]
    copies: usize,
    /// Give up (and stop the target) after this long.
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
    /// The command to start (required for stdio).
    #[arg(last = true)]
    command: Vec<String>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))
}

fn main() -> ExitCode {
    // `cargo bench` appends `--bench`; `cargo test --all-targets` passes nothing.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    if args.len() <= 1 {
        eprintln!("loadgen: nothing to do (see benches/run.sh, or `loadgen --help`)");
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Table { file } => match std::fs::read_to_string(&file) {
            Ok(text) => {
                print!(
                    "{}",
                    harness::table::render(&harness::table::Results::parse(&text))
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("loadgen: cannot read {}: {error}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => runtime.block_on(run(*args)),
        Command::Relay { listen, command } => {
            let relayed = match listen.as_str() {
                "stdio" => harness::relay::stdio(&command),
                port => match port.parse::<u16>() {
                    Ok(port) => runtime.block_on(harness::relay::http(port, &command)),
                    Err(_) => Err(format!("--listen takes `stdio` or a port, not `{port}`")),
                },
            };
            match relayed {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("loadgen relay: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let launch = (!args.command.is_empty()).then(|| Launch {
        command: args.command.clone(),
        env: args.env.clone(),
        env_remove: args.env_remove.clone(),
        stdio: args.wire == Wire::Stdio,
    });
    let plan = Plan {
        target: args.target,
        downstream: args.downstream,
        round: args.round,
        wire: args.wire,
        url: args.url,
        launch,
        timeout: Duration::from_millis(args.timeout_ms),
        expect_tools: args.expect_tools,
        idle_ms: args.idle_ms,
        list_calls: args.list,
        warmup: args.warmup,
        seq_calls: args.seq,
        in_flight: args.in_flight.into_iter().filter(|&n| n > 0).collect(),
        sessions: args.sessions.into_iter().filter(|&n| n > 0).collect(),
        calls_per_level: args.calls,
        soak_calls: args.soak,
        soak_in_flight: args.soak_in_flight,
        call: CallSpec {
            tool: args.tool,
            arg: args.arg,
        },
        hooks: Hooks {
            after_warmup: args.exec_after_warmup,
            after_run: args.exec_after_run,
        },
        stop_grace: Duration::from_millis(args.stop_grace_ms),
    };
    let reporter = Reporter::new(&plan, true);
    let limit = Duration::from_secs(args.max_seconds);
    let work = async {
        if args.copies > 1 {
            harness::measure::parallel_cold_start(&plan, args.copies, &reporter).await
        } else {
            harness::measure::run(&plan, &reporter).await
        }
    };
    match tokio::time::timeout(limit, work).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(_) => {
            // Dropping the run's future killed the target (kill_on_drop); its group too:
            reporter.failure("run", &format!("gave up after {limit:?}"));
            ExitCode::FAILURE
        }
    }
}
