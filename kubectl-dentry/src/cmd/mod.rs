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
