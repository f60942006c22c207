//! `kubectl-dentry`: the kubectl plugin (`kubectl dentry ...` finds it on PATH).
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use kubectl_dentry::{cleanup, cluster::ClusterArgs, error::Error, fetch};

/// Investigate the kernel dentry cache of a pod, or of every pod on a node.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-dentry",
    bin_name = "kubectl dentry",
    version,
    after_help = "Examples:\n  kubectl dentry cleanup -A\n  kubectl dentry completion bash > /etc/bash_completion.d/kubectl-dentry"
)]
struct Cli {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the plugin's version.
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
            Ok(())
        }
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
            what: Fetch::Traces { pod, node, dir, overwrite },
        } => runtime()?.block_on(async {
            let (client, _) = kubectl_dentry::cluster::connect(&cli.cluster).await?;
            let req = fetch::Request {
                pod: pod.map(|p| p.strip_prefix("pod/").map(str::to_owned).unwrap_or(p)),
                node,
                namespace: cli.cluster.namespace.clone(),
                dir,
                overwrite,
            };
            let pods = fetch::tracer_pods(&client, &req).await?;
            if pods.is_empty() {
                return Err(Error::NoTracers(kubectl_dentry::error::Scope(req.namespace.clone())));
            }
            let (mut fetched, mut bytes, mut skipped) = (0, 0, 0);
            for (ns, name, node) in &pods {
                for outcome in fetch::fetch_pod(&client, (ns, name, node), &req).await? {
                    match outcome {
                        fetch::Outcome::Fetched { path, bytes: n } => {
                            println!("{}\t{n}", path.display());
                            fetched += 1;
                            bytes += n;
                        }
                        fetch::Outcome::Skipped { path } => {
                            eprintln!("skipped {} (exists; --overwrite replaces it)", path.display());
                            skipped += 1;
                        }
                    }
                }
            }
            eprintln!("fetched {fetched} file(s), {bytes} bytes, from {} tracer pod(s); skipped {skipped}", pods.len());
            Ok(())
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
        .map_err(|e| Error::Unreachable(format!("cannot start the async runtime: {e}")))
}
