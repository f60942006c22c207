//! `kubectl-dentry`: the kubectl plugin (`kubectl dentry ...` finds it on PATH).
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use std::time::Duration;

use kubectl_dentry::{cleanup, cluster::ClusterArgs, error::Error, fetch, table, top_run, trace};

/// Investigate the kernel dentry cache of a pod, or of every pod on a node.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-dentry",
    bin_name = "kubectl dentry",
    version,
    after_help = "Examples:\n  kubectl dentry top\n  kubectl dentry trace pod/mysql-0 --patterns=.ibd,#sql\n  kubectl dentry fetch traces\n  kubectl dentry cleanup -A"
)]
struct Cli {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    command: Command,
}

/// How tracer pods are started (trace, top).
#[derive(Debug, Clone, clap::Args)]
struct TracerArgs {
    /// The tracer image.
    #[arg(long, env = "KUBECTL_DENTRY_IMAGE", default_value = kubectl_dentry::DEFAULT_IMAGE)]
    image: String,
    /// Namespace for tracer pods (default: the target's); it must admit privileged pods.
    #[arg(long, value_name = "NAMESPACE")]
    tracer_namespace: Option<String>,
    /// How long a tracer pod may take to start (pull, schedule, attach).
    #[arg(long, default_value = "2m", value_parser = duration)]
    timeout: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{s:?} must be longer than zero")),
        Err(e) => Err(format!(
            "{s:?} is not a duration ({e}); use e.g. 30s, 5m, 1h"
        )),
    }
}

/// Comma-separated substrings (a newtype, so clap takes the list as one value).
#[derive(Debug, Clone)]
struct Patterns(Vec<String>);

fn patterns(s: &str) -> Result<Patterns, String> {
    let list: Vec<String> = s.split(',').map(str::to_owned).collect();
    if list.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "{s:?} has an empty pattern; give comma-separated substrings, e.g. .ibd,#sql"
        ));
    }
    Ok(Patterns(list))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trace the dentries one pod allocates: paths as TSV on stdout, the summary on stderr.
    #[command(
        after_help = "Examples:\n  kubectl dentry trace pod/mysql-0 --patterns=.ibd,#sql\n  kubectl dentry trace mysql-0 -c mysql --duration 5m > mysql.tsv\n  kubectl dentry trace pod/web-1 -n shop -o json | jq .path\n  kubectl dentry trace pod/mysql-0 --keep --duration 1h   # then: kubectl dentry fetch traces\n\nOnly trace lines go to stdout, so | grep and | awk work. Ctrl-C stops the trace, deletes\nthe tracer pod and prints the tracer's summary (top paths, top directories of negative lookups)."
    )]
    Trace {
        /// The pod: pod/NAME or NAME.
        pod: String,
        /// Only this container of the pod.
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// Only paths containing one of these comma-separated substrings.
        #[arg(long, value_parser = patterns, value_name = "A,B,...")]
        patterns: Option<Patterns>,
        /// Stop after this long (Ctrl-C stops earlier).
        #[arg(long, default_value = "10m", value_parser = duration)]
        duration: Duration,
        /// Stop after this many events.
        #[arg(long)]
        max_events: Option<u64>,
        /// Leave the tracer pod when done: it serves its trace files for an hour for
        /// `fetch traces` (and `cleanup` removes it).
        #[arg(long)]
        keep: bool,
        /// Output format of stdout.
        #[arg(short = 'o', long, value_enum, default_value = "tsv")]
        output: trace::Output,
        #[command(flatten)]
        tracer: TracerArgs,
    },
    /// Show which containers allocate dentries fastest, on every node or where the pods are.
    #[command(
        after_help = "Examples:\n  kubectl dentry top\n  kubectl dentry top --watch --sort-by negative\n  kubectl dentry top pod/mysql-0 -n prod\n  kubectl dentry top -l app=mysql -A -o json\n  kubectl dentry top --endpoint http://127.0.0.1:9090   # a port-forwarded tracer\n\nUses the DaemonSet's tracers (deploy/) where they run, else starts a counters-only tracer\npod per node and deletes it on exit. Rates are per second between two scrapes --interval apart."
    )]
    Top {
        /// Only this pod (pod/NAME or NAME) and its node.
        pod: Option<String>,
        /// Only pods matching this label selector (and their nodes).
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// Only this node.
        #[arg(long)]
        node: Option<String>,
        /// Rows from every namespace (the default without -n).
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Time between the scrapes rates are computed over.
        #[arg(long, default_value = "5s", value_parser = duration)]
        interval: Duration,
        /// Refresh until Ctrl-C.
        #[arg(short = 'w', long)]
        watch: bool,
        #[arg(long, value_enum, default_value = "alloc")]
        sort_by: table::SortBy,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: table::Output,
        /// Read one tracer's /metrics at this URL instead of the cluster.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        #[command(flatten)]
        tracer: TracerArgs,
    },
    /// Print the plugin's version, and the tracer images in use when the cluster is reachable.
    #[command(
        after_help = "Examples:\n  kubectl dentry version\n  kubectl dentry version --context prod"
    )]
    Version,
    /// Delete every tracer pod this plugin created (in the namespace, or everywhere with -A).
    #[command(
        after_help = "Examples:\n  kubectl dentry cleanup\n  kubectl dentry cleanup -n prod\n  kubectl dentry cleanup -A"
    )]
    Cleanup {
        /// In every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// Download files from tracer pods.
    #[command(
        after_help = "Examples:\n  kubectl dentry fetch traces\n  kubectl dentry fetch traces --node node-a -d /tmp/traces"
    )]
    Fetch {
        #[command(subcommand)]
        what: Fetch,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  source <(kubectl dentry completion bash)\n  kubectl dentry completion zsh > \"${fpath[1]}/_kubectl-dentry\""
    )]
    Completion { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
enum Fetch {
    /// The rotated trace files of tracer pods (kept with `trace --keep`, or the DaemonSet's),
    /// into DIR/<node>/. Searches every namespace unless -n is given.
    #[command(
        after_help = "Examples:\n  kubectl dentry fetch traces\n  kubectl dentry fetch traces --node node-a -d /tmp/traces\n  kubectl dentry fetch traces pod/dentry-trace-mysql-0-x7k2q -n prod --overwrite"
    )]
    Traces {
        /// Only this tracer pod (pod/NAME or NAME).
        pod: Option<String>,
        /// Only tracer pods on this node.
        #[arg(long)]
        node: Option<String>,
        /// Where to put the files (a directory per node is made inside).
        #[arg(short = 'd', long, default_value = "dentry-traces")]
        dir: std::path::PathBuf,
        /// Replace files that already exist.
        #[arg(long)]
        overwrite: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "kubectl dentry: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubectl dentry: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Version => {
            println!("kubectl-dentry {}", env!("CARGO_PKG_VERSION"));
            println!("default tracer image {}", kubectl_dentry::DEFAULT_IMAGE);
            if let Ok(image) = std::env::var("KUBECTL_DENTRY_IMAGE") {
                println!("KUBECTL_DENTRY_IMAGE {image}");
            }
            // Best effort: the images of tracers running in the cluster, if it answers soon.
            let images = runtime()?.block_on(async {
                tokio::time::timeout(Duration::from_secs(3), async {
                    let (client, _) = kubectl_dentry::cluster::connect(&cli.cluster).await.ok()?;
                    kubectl_dentry::cluster::tracer_images(&client).await.ok()
                })
                .await
                .ok()
                .flatten()
            });
            match images {
                Some(images) if !images.is_empty() => {
                    for (image, n) in images {
                        println!("tracer image in the cluster {image} ({n} pod(s))");
                    }
                }
                Some(_) => println!("no tracer pods running in the cluster"),
                None => println!("cluster not reachable: tracer images unknown"),
            }
            Ok(())
        }
        Command::Trace {
            pod,
            container,
            patterns,
            duration,
            max_events,
            keep,
            output,
            tracer,
        } => runtime()?.block_on(async {
            let (client, namespace) = kubectl_dentry::cluster::connect(&cli.cluster).await?;
            let req = trace::Request {
                namespace,
                pod,
                container,
                patterns: patterns.map(|p| p.0).unwrap_or_default(),
                duration,
                max_events,
                keep,
                image: tracer.image,
                tracer_namespace: tracer.tracer_namespace,
                timeout: tracer.timeout,
                output,
            };
            trace::run(&client, &req).await
        }),
        Command::Top {
            pod,
            selector,
            node,
            all_namespaces,
            interval,
            watch,
            sort_by,
            output,
            endpoint,
            tracer,
        } => runtime()?.block_on(async {
            let mut req = top_run::Request {
                namespace: cli.cluster.namespace.clone().unwrap_or_default(),
                namespace_explicit: cli.cluster.namespace.is_some(),
                all_namespaces,
                pod,
                selector,
                node,
                interval,
                watch,
                sort_by,
                output,
                image: tracer.image,
                tracer_namespace: tracer.tracer_namespace,
                timeout: tracer.timeout,
            };
            if let Some(url) = endpoint {
                return top_run::run_endpoint(&url, &req).await;
            }
            let (client, namespace) = kubectl_dentry::cluster::connect(&cli.cluster).await?;
            req.namespace = namespace;
            top_run::run(&client, &req).await
        }),
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "kubectl-dentry",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Fetch {
            what:
                Fetch::Traces {
                    pod,
                    node,
                    dir,
                    overwrite,
                },
        } => runtime()?.block_on(async {
            let (client, _) = kubectl_dentry::cluster::connect(&cli.cluster).await?;
            let req = fetch::Request {
                pod: pod.map(|p| p.strip_prefix("pod/").map(str::to_owned).unwrap_or(p)),
                node,
                namespace: cli.cluster.namespace.clone(),
                dir,
                overwrite,
            };
            fetch::run(&client, &req).await
        }),
        Command::Cleanup { all_namespaces } => runtime()?.block_on(async {
            let (client, namespace) = kubectl_dentry::cluster::connect(&cli.cluster).await?;
            let scope = (!all_namespaces).then_some(namespace.as_str());
            let deleted = cleanup::run(&client, scope).await?;
            for pod in &deleted {
                eprintln!("deleted pod/{pod}");
            }
            let place = match scope {
                Some(ns) => format!("in namespace {ns}"),
                None => "across all namespaces".to_owned(),
            };
            println!("{} tracer pod(s) deleted {place}", deleted.len());
            Ok(())
        }),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Local(format!("cannot start the async runtime: {e}")))
}
