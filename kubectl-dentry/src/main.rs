//! `kubectl-dentry`: the kubectl plugin (`kubectl dentry ...` finds it on PATH).
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use kubectl_dentry::{cleanup, cluster::ClusterArgs, error::Error};

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
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  source <(kubectl dentry completion bash)\n  kubectl dentry completion zsh > \"${fpath[1]}/_kubectl-dentry\""
    )]
    Completion { shell: clap_complete::Shell },
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
