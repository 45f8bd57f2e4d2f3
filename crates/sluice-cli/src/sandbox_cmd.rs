//! `sluice sandbox`: serve a Salesforce-compatible org until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context as _;
use sandbox::knobs::Knobs;
use sandbox::oauth::Credentials;
use sandbox::server::{self, SandboxConfig};

use crate::failure::Failure;

/// Flags of `sluice sandbox`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Port of the Pub/Sub API (gRPC change events; 0: any free port).
    #[arg(long, default_value_t = 0)]
    pubsub_port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Serve HTTPS with a fresh self-signed certificate for localhost and 127.0.0.1.
    #[arg(long)]
    tls: bool,
    /// Where --tls writes the CA certificate (PEM) clients must trust.
    #[arg(long, default_value = "sandbox-ca.pem", requires = "tls")]
    ca_file: PathBuf,
    /// Seed of the generated data: the same seed gives the same org.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Records per object, e.g. Account=100000,Contact=50000 (others keep their defaults).
    #[arg(long, value_name = "OBJECT=N,...")]
    records: Option<String>,
    /// Connected-app consumer key.
    #[arg(long, default_value = server::DEFAULT_CLIENT_ID)]
    client_id: String,
    /// Connected-app consumer secret.
    #[arg(long, default_value = server::DEFAULT_CLIENT_SECRET)]
    client_secret: String,
    /// Integration user's username.
    #[arg(long, default_value = server::DEFAULT_USERNAME)]
    username: String,
    /// Integration user's password.
    #[arg(long, default_value = server::DEFAULT_PASSWORD)]
    password: String,
    /// X.509 certificate (PEM) whose key signs JWT bearer assertions.
    #[arg(long, value_name = "FILE")]
    jwt_cert: Option<PathBuf>,
    /// Knobs file (TOML): churn, late commits, API limit, token lifetime, errors, ...
    #[arg(long, value_name = "FILE")]
    knobs: Option<PathBuf>,
    /// Print one JSON line with the URLs and credentials once serving.
    #[arg(long)]
    json: bool,
}

fn config(args: &Args) -> Result<SandboxConfig, Failure> {
    let mut cfg = SandboxConfig::default();
    if let Some(spec) = &args.records {
        cfg.counts =
            sandbox::generate::parse_counts(spec).map_err(|e| Failure::usage(anyhow::anyhow!("--records: {e}")))?;
    }
    if let Some(path) = &args.knobs {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--knobs: cannot read {}", path.display()))
            .map_err(Failure::usage)?;
        cfg.knobs = Knobs::from_toml(&text, &path.display().to_string())
            .map_err(|e| Failure::usage(anyhow::anyhow!("--knobs {e}")))?;
    }
    let jwt_cert_pem = match &args.jwt_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--jwt-cert: cannot read {}", path.display()))
                .map_err(Failure::usage)?,
        ),
        None => None,
    };
    cfg.creds = Credentials {
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
        username: args.username.clone(),
        password: args.password.clone(),
        jwt_cert_pem,
    };
    cfg.seed = args.seed;
    cfg.bind = args.bind;
    cfg.port = args.port;
    cfg.pubsub_port = args.pubsub_port;
    cfg.tls_ca_file = args.tls.then(|| args.ca_file.clone());
    Ok(cfg)
}

/// Runs the command.
pub async fn run(args: Args) -> Result<(), Failure> {
    let cfg = config(&args)?;
    let running = server::start(cfg).await.map_err(|e| match e {
        server::StartError::Knobs(_) | server::StartError::UnknownObject(_) | server::StartError::JwtCert(_) => {
            Failure::usage(e)
        }
        other => Failure::failed(other),
    })?;
    let ca_file = running.ca_file.as_ref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    if args.json {
        let line = serde_json::json!({
            "instance_url": running.instance_url,
            "login_url": running.login_url,
            "pubsub_url": running.pubsub_url,
            "client_id": args.client_id,
            "client_secret": args.client_secret,
            "username": args.username,
            "password": args.password,
            "ca_file": ca_file.as_ref().map(|p| p.display().to_string()),
        });
        println!("{line}");
    } else {
        let counts: Vec<String> = {
            let org = running.state.org.read();
            org.tables.iter().map(|t| format!("{}={}", t.def.name, t.len())).collect()
        };
        println!("sluice sandbox: a Salesforce-compatible org at {}", running.instance_url);
        println!();
        println!("  login_url      {}", running.login_url);
        println!("  instance_url   {}", running.instance_url);
        println!("  pubsub_url     {}", running.pubsub_url);
        println!("  client_id      {}", args.client_id);
        println!("  client_secret  {}", args.client_secret);
        println!("  username       {}", args.username);
        println!("  password       {}", args.password);
        if let Some(ca) = &ca_file {
            println!("  ca_file        {}", ca.display());
        }
        println!("  records        {}", counts.join(", "));
        println!("  admin API      {}/sandbox/v1/status", running.instance_url);
        println!();
        println!("Try: curl -s {}/services/data/ | head -c 200", running.instance_url);
        println!("Ctrl-C stops it.");
    }
    wait_for_signal().await;
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
