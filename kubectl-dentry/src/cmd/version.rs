//! `kubectl dentry version`: the plugin's version and default image, and the images of the
//! tracers running in the cluster when it answers soon.
use std::time::Duration;

use crate::{
    cluster::{self, ClusterArgs},
    error::Error,
};

pub async fn run(args: &ClusterArgs) -> Result<(), Error> {
    println!("kubectl-dentry {}", env!("CARGO_PKG_VERSION"));
    println!("default tracer image {}", crate::DEFAULT_IMAGE);
    if let Ok(image) = std::env::var("KUBECTL_DENTRY_IMAGE") {
        println!("KUBECTL_DENTRY_IMAGE {image}");
    }
    // Best effort: an unreachable cluster is said, not an error.
    let images = tokio::time::timeout(Duration::from_secs(3), async {
        let (client, _) = cluster::connect(args).await.ok()?;
        cluster::tracer_images(&client).await.ok()
    })
    .await
    .ok()
    .flatten();
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
