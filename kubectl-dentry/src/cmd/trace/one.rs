//! `trace pod/NAME`: one tracer pod on the target's node, its TSV lines streamed to stdout,
//! its messages and summary to stderr, and the pod deleted at the end (unless --keep).
use std::{io::Write as _, time::Instant};

use futures::StreamExt as _;
use kube::Client;

use super::{Args, KEEP_SECS, Output, SUMMARY_WAIT};
use crate::{
    error::Error,
    pods,
    progress::Progress,
    signals::Stop,
    tracer::{
        launch::{self, Launched, State},
        log::{self as tracer_log, Line},
        pod::{Purpose, TracerPod, name_prefix},
    },
};

/// How the run ended, for the closing line.
enum End {
    /// The tracer finished (duration, cap) and exited.
    Exited,
    /// The tracer finished and lingers with its files (--keep).
    Lingering,
    /// SIGINT, SIGTERM or SIGHUP (named).
    Interrupted(&'static str),
    /// The traced pod went away (deleted, or its Job's pod finished): why, in words.
    TargetGone(String),
    /// Whoever reads stdout went away (`| head`).
    ReaderGone,
}

pub async fn run(client: &Client, namespace: &str, name: &str, req: &Args) -> Result<(), Error> {
    // First: from the moment a pod may exist, every stop signal must lead to its deletion.
    let mut stop = Stop::install()?;
    let mut progress = Progress::new();
    progress.set(format!("resolving pod {namespace}/{name}"));
    let find = async {
        if req.wait {
            pods::wait_scheduled(client, namespace, name, req.wait_timeout, &mut progress).await
        } else {
            pods::resolve(client, namespace, name, req.container.as_deref()).await
        }
    };
    let target = tokio::select! {
        t = find => t?,
        signal = stop.recv() => {
            progress.finish(format!("stopped by {signal}; nothing was started"));
            return Ok(());
        }
    };
    let spec = TracerPod {
        name_prefix: name_prefix("trace", &target.name),
        namespace: req
            .tracer
            .tracer_namespace
            .clone()
            .unwrap_or_else(|| target.namespace.clone()),
        node: target.node.clone(),
        image: req.tracer.image.clone(),
        duration_secs: req.duration.as_secs().max(1),
        target: Some(format!("{}/{}", target.namespace, target.name)),
        purpose: Purpose::Trace {
            target_uids: vec![target.uid.clone()],
            adds: false,
            container_id: target.container_id.clone(),
            patterns: req.patterns.clone().map(|p| p.0).unwrap_or_default(),
            max_events: req.max_events,
            linger_secs: req.keep.then_some(KEEP_SECS),
            pending: req.wait,
            host_paths: req.host_paths,
        },
        privileged: req.tracer.privileged,
    };
    progress.set(format!(
        "creating a tracer pod in namespace {} on node {}",
        spec.namespace, spec.node
    ));
    let launched = launch::create(client, &spec).await?;
    let outcome = supervise(
        client,
        &launched,
        (namespace, name),
        req,
        &mut progress,
        &mut stop,
    )
    .await;
    let keep = req.keep && outcome.is_ok();
    if keep {
        eprintln!(
            "kept tracer pod {ns}/{name}: it serves its files for {h}h after the trace \
             (`kubectl dentry fetch traces pod/{name} -n {ns}`; `kubectl dentry cleanup -n {ns}` \
             removes it)",
            ns = launched.namespace,
            name = launched.name,
            h = KEEP_SECS / 3600
        );
    } else {
        launch::delete(client, &launched).await?;
    }
    match outcome? {
        End::Interrupted(signal) if !keep => {
            eprintln!("stopped by {signal}; tracer pod {} deleted", launched.name)
        }
        End::TargetGone(why) if !keep => {
            eprintln!(
                "{why}: the trace is over; tracer pod {} deleted",
                launched.name
            )
        }
        End::TargetGone(why) => eprintln!("{why}: the trace is over"),
        End::ReaderGone => tracing::debug!("stdout closed"),
        _ => {}
    }
    Ok(())
}

/// From "created" to "over": start-up with progress and a timeout, then the stream. A stop
/// signal at any point ends it; the caller deletes the pod.
async fn supervise(
    client: &Client,
    launched: &Launched,
    (namespace, name): (&str, &str),
    req: &Args,
    progress: &mut Progress,
    stop: &mut Stop,
) -> Result<End, Error> {
    let started = Instant::now();
    let timeout_error = |state: &str| Error::Timeout {
        pod: format!("{}/{}", launched.namespace, launched.name),
        secs: req.tracer.timeout.as_secs(),
        state: state.to_owned(),
    };
    let state = tokio::select! {
        s = launch::wait_started(client, launched, progress) => s?,
        signal = stop.recv() => return Ok(End::Interrupted(signal)),
        () = tokio::time::sleep(req.tracer.timeout) => return Err(timeout_error("not started")),
    };
    if let State::Exited(code) = state
        && code != 0
    {
        return Err(launch::failure(client, launched).await);
    }
    progress.set(format!(
        "tracer pod {}/{}: attaching probes on {}",
        launched.namespace, launched.name, launched.node
    ));
    let mut lines = Box::pin(launch::follow(client, launched).await?);
    let mut gone = Box::pin(pods::gone(client, namespace, name));
    let mut stdout = std::io::stdout().lock();
    let mut attached = false;
    let mut interrupted: Option<(End, tokio::time::Instant)> = None;
    let attach_deadline = tokio::time::Instant::from_std(started + req.tracer.timeout);
    loop {
        let line = tokio::select! {
            line = lines.next() => line,
            signal = stop.recv() => {
                if interrupted.is_some() || req.keep {
                    // A second signal, or nothing to wait for: the caller deletes the pod.
                    return Ok(End::Interrupted(signal));
                }
                // The tracer prints its summary when the pod's deletion sends it SIGTERM;
                // keep reading until then.
                launch::delete(client, launched).await?;
                progress.println(&format!(
                    "{signal}: stopping the tracer (Ctrl-C again to leave now)"
                ));
                interrupted = Some((End::Interrupted(signal), tokio::time::Instant::now()));
                continue;
            }
            Some(why) = gone.next(), if interrupted.is_none() => {
                if req.keep {
                    return Ok(End::TargetGone(why));
                }
                launch::delete(client, launched).await?;
                progress.println(&format!("{why}: stopping the tracer"));
                interrupted = Some((End::TargetGone(why), tokio::time::Instant::now()));
                continue;
            }
            () = tokio::time::sleep_until(attach_deadline), if !attached => {
                return Err(timeout_error("probes not attached"));
            }
            () = tokio::time::sleep_until(
                interrupted.as_ref().map_or_else(tokio::time::Instant::now, |(_, t)| *t + SUMMARY_WAIT)
            ), if interrupted.is_some() => {
                return Ok(interrupted.map_or(End::Interrupted("SIGINT"), |(end, _)| end));
            }
        };
        let Some(line) = line else { break };
        let line = line.map_err(|e| Error::LogStream {
            pod: format!("{}/{}", launched.namespace, launched.name),
            message: e.to_string(),
        })?;
        let written = match tracer_log::classify(&line) {
            Line::Header => match req.output {
                Output::Tsv => writeln!(stdout, "{line}"),
                Output::Json => Ok(()),
            },
            Line::Event => match req.output {
                Output::Tsv => writeln!(stdout, "{line}"),
                Output::Json => writeln!(stdout, "{}", tracer_log::event_json(&line)),
            },
            Line::Attached => {
                attached = true;
                progress.finish(format!(
                    "tracing pod {}/{} on node {} ({}); Ctrl-C stops",
                    namespace,
                    name,
                    launched.node,
                    tracer_log::attach_mode(&line).unwrap_or("attached")
                ));
                Ok(())
            }
            Line::Finished => return Ok(End::Lingering),
            Line::Message => {
                progress.println(&line);
                Ok(())
            }
        };
        if written.is_err() {
            return Ok(End::ReaderGone);
        }
    }
    if let Some((end, _)) = interrupted {
        return Ok(end);
    }
    match launch::exit_code(client, launched).await {
        Some(0) | None => Ok(End::Exited),
        Some(_) => Err(launch::failure(client, launched).await),
    }
}
