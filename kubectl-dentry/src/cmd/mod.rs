//! One module per command: its flags (clap `Args`) and what it does.
pub mod cleanup;
pub mod fetch;
pub mod top;
pub mod trace;
pub mod version;

use crate::{
    cli::{Cli, Command, Fetch},
    cluster,
    error::Error,
    prometheus::Server,
};

/// Runs the command the command line names.
pub async fn run(cli: Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Version => version::run(&cli.cluster).await,
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
            args @ top::Args {
                endpoint: Some(url),
                ..
            },
        ) => top::run_endpoint(url, args).await,
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
            let ns = top::Namespace {
                name,
                explicit: cli.cluster.namespace.is_some(),
            };
            top::run_prometheus(client.as_ref(), &ns, &server, args).await
        }
        Command::Trace(args) => {
            let (client, namespace) = cluster::connect(&cli.cluster).await?;
            trace::run(&client, &namespace, args).await
        }
        Command::Top(args) => {
            let (client, namespace) = cluster::connect(&cli.cluster).await?;
            let ns = top::Namespace {
                name: namespace,
                explicit: cli.cluster.namespace.is_some(),
            };
            top::run(&client, &ns, args).await
        }
        Command::Cleanup(args) => {
            let (client, namespace) = cluster::connect(&cli.cluster).await?;
            cleanup::run(&client, &namespace, args).await
        }
        Command::Fetch {
            what: Fetch::Traces(args),
        } => {
            let (client, _) = cluster::connect(&cli.cluster).await?;
            fetch::run(&client, cli.cluster.namespace.as_deref(), args).await
        }
    }
}
