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
        Command::Top(args) if args.endpoint.is_some() => {
            top::run_endpoint(args.endpoint.as_deref().unwrap_or_default(), args).await
        }
        command => {
            let (client, namespace) = cluster::connect(&cli.cluster).await?;
            match command {
                Command::Trace(args) => trace::run(&client, &namespace, args).await,
                Command::Top(args) => {
                    let ns = top::Namespace {
                        name: namespace,
                        explicit: cli.cluster.namespace.is_some(),
                    };
                    top::run(&client, &ns, args).await
                }
                Command::Cleanup(args) => cleanup::run(&client, &namespace, args).await,
                Command::Fetch {
                    what: Fetch::Traces(args),
                } => fetch::run(&client, cli.cluster.namespace.as_deref(), args).await,
                Command::Version | Command::Completion { .. } => Ok(()),
            }
        }
    }
}
