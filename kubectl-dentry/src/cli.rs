//! The command line: the commands, the flags every command shares, and which command runs.
use clap::{Parser, Subcommand};

use crate::{
    cluster::{self, ClusterArgs},
    cmd,
    error::Error,
    prometheus::Server,
};

/// Investigate the kernel dentry cache of a pod, or of every pod on a node.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-dentry",
    bin_name = "kubectl dentry",
    version,
    after_help = "Examples:\n  kubectl dentry top\n  kubectl dentry trace pod/mysql-0 --patterns=.ibd,#sql\n  kubectl dentry fetch traces\n  kubectl dentry cleanup -A"
)]
pub struct Cli {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trace the dentries one pod allocates: paths as TSV on stdout, the summary on stderr.
    Trace(cmd::trace::Args),
    /// Show which containers allocate dentries fastest, on every node or where the pods are.
    Top(cmd::top::Args),
    /// Print the plugin's version, and the tracer images in use when the cluster is reachable.
    #[command(
        after_help = "Examples:\n  kubectl dentry version\n  kubectl dentry version --context prod"
    )]
    Version,
    /// Delete every tracer pod this plugin created (in the namespace, or everywhere with -A).
    Cleanup(cmd::cleanup::Args),
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
pub enum Fetch {
    /// The rotated trace files of tracer pods (kept with `trace --keep`, or the DaemonSet's),
    /// into DIR/<node>/. Searches every namespace unless -n is given.
    Traces(cmd::fetch::Args),
}

/// Runs the command the command line names.
pub async fn run(cli: Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Version => cmd::version::run(&cli.cluster).await,
        Command::Completion { shell } => {
            clap_complete::generate(
                *shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "kubectl-dentry",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Top(
            args @ cmd::top::Args {
                endpoint: Some(url),
                ..
            },
        ) => cmd::top::run_endpoint(url, args).await,
        Command::Top(args) if args.prometheus.is_some() || args.prometheus_service.is_some() => {
            // A cluster only where one is needed: -l, pod/NAME without -n, the service proxy.
            let needs_cluster = args.prometheus_service.is_some()
                || args.selector.is_some()
                || (args.pod.is_some() && cli.cluster.namespace.is_none());
            let (client, name) = if needs_cluster {
                let (client, namespace) = cluster::connect(&cli.cluster).await?;
                (Some(client), namespace)
            } else {
                (None, cli.cluster.namespace.clone().unwrap_or_default())
            };
            let server = match (&args.prometheus, &args.prometheus_service, &client) {
                (Some(url), ..) => Server::Url(url.clone()),
                (None, Some((namespace, name, port)), Some(client)) => Server::Service {
                    client: client.clone(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                    port: port.clone(),
                },
                _ => return Err(Error::Local("no Prometheus to query".into())),
            };
            let ns = cmd::top::Namespace {
                name,
                explicit: cli.cluster.namespace.is_some(),
            };
            cmd::top::run_prometheus(client.as_ref(), &ns, &server, args).await
        }
        Command::Trace(args) => {
            let (client, namespace) = cluster::connect(&cli.cluster).await?;
            cmd::trace::run(&client, &namespace, args).await
        }
        Command::Top(args) => {
            let (client, namespace) = cluster::connect(&cli.cluster).await?;
            let ns = cmd::top::Namespace {
                name: namespace,
                explicit: cli.cluster.namespace.is_some(),
            };
            cmd::top::run(&client, &ns, args).await
        }
        Command::Cleanup(args) => {
            let (client, namespace) = cluster::connect(&cli.cluster).await?;
            cmd::cleanup::run(&client, &namespace, args).await
        }
        Command::Fetch {
            what: Fetch::Traces(args),
        } => {
            let (client, _) = cluster::connect(&cli.cluster).await?;
            cmd::fetch::run(&client, cli.cluster.namespace.as_deref(), args).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses_into_its_own_args() {
        let cli = Cli::try_parse_from(["kubectl-dentry", "trace", "pod/mysql-0", "-c", "db"])
            .expect("parses");
        match cli.command {
            Command::Trace(a) => assert_eq!(
                (a.target.map(|t| t.to_string()), a.container.as_deref()),
                (Some("pod/mysql-0".to_owned()), Some("db"))
            ),
            other => panic!("{other:?}"),
        }
        let err = Cli::try_parse_from(["kubectl-dentry", "fetch", "traces", "deploy/x"])
            .expect_err("a deployment is not a tracer pod");
        assert!(err.to_string().contains("not deploy"), "{err}");
    }
}
